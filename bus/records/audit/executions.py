"""Whether a request was executed at its agency, as the audit log tells it.

A dead letter does not say whether its request was run: the broker expires a message whose
worker answered it but whose ack was lost just as it expires one nobody ever took. The audit
log does: the provider's node (or the agency's operator) writes an entry before the answer
leaves. ``executed`` is the set of message ids, among those asked about, with such an entry
whose outcome shows the agency was asked and answered (``EXECUTED_OUTCOMES``: data handed out,
or nothing known about the person) — what ``run_bus.py dlq list`` shows as ``executed``. An
answer given by a worker that executed the request again (``provider:re-executed``: the worker
before it stopped unrecorded) counts like any other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from bus.records.audit.chain import AuditRecord, AuditStore

__all__ = ["EXECUTED_OUTCOMES", "PROVIDER_SIDES", "executed", "was_executed"]

EXECUTED_OUTCOMES = frozenset({"ok", "no-data"})
PROVIDER_SIDES = frozenset({"provider", "provider:re-executed"})  # a provider node's answers


def was_executed(entry: AuditRecord) -> bool:
    """An entry of the provider's side (or an agency operator's answer) saying the agency
    answered the request."""
    answering = entry.side in PROVIDER_SIDES or (
        entry.side.startswith("operator:") and entry.outcome != "read"
    )
    return answering and entry.outcome in EXECUTED_OUTCOMES


def executed(
    store: AuditStore, message_ids: Collection[str], *, since: dt.datetime | None = None
) -> set[str]:
    """The ids of ``message_ids`` the audit log shows executed; ``since`` bounds the entries
    read (those recorded at or after it: give the oldest request's ``issued_at``). Raises
    ``BusUnavailable`` when the log cannot be read."""
    wanted = set(message_ids)
    if not wanted:
        return set()
    return {
        entry.message_id
        for entry in store.entries(since=since)
        if entry.message_id in wanted and was_executed(entry)
    }
