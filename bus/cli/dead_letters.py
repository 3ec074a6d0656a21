"""The ``executed`` column of ``run_bus.py dlq list``: was the dead letter's request run?

A request the broker expired after its worker answered it (the ack lost) and one that never
reached its agency look the same in the dead-letter queue; the audit log tells them apart
(``bus.records.audit.executions``). Entries are read from the oldest request's ``issued_at``
on, so the whole log is not scanned.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bus.cli.common import err_console
from bus.config.settings import BusSettings
from bus.core.errors import BusUnavailable
from bus.records.audit import open_audit_store
from bus.records.audit.executions import executed

__all__ = ["dead_letters_executed"]


def dead_letters_executed(settings: BusSettings, described: list[dict[str, Any]]) -> dict[str, str]:
    """``yes``/``no`` per dead letter id (``bus.ops.dead_letters.describe`` output) whose body
    is a request envelope, ``?`` for each when the audit log cannot be read."""
    requests = {
        d["id"]: d for d in described
        if d["envelope"] is not None and d["envelope"].get("kind") == "request"
    }
    if not requests:
        return {}
    oldest = min(dt.datetime.fromisoformat(d["envelope"]["issued_at"]) for d in requests.values())
    since = oldest - dt.timedelta(seconds=settings.trust.max_clock_skew_s)  # another node's clock
    url = settings.audit.url
    try:
        if url is None:
            raise BusUnavailable("the configuration names no audit log")
        store = open_audit_store(url.get_secret_value(), table=settings.audit.table)
        try:
            ran = executed(store, {d["message_id"] for d in requests.values()}, since=since)
        finally:
            store.close()
    except BusUnavailable as exc:
        err_console.print(f"executed: unknown, the audit log cannot be read ({exc.detail})",
                          markup=False, highlight=False)
        return dict.fromkeys(requests, "?")
    return {letter: "yes" if d["message_id"] in ran else "no" for letter, d in requests.items()}
