"""What a chaos run was asked to do (``Plan``) and what it found (``Report``), with the audit
log's side of the count: the re-executions it recorded and the executions twice it does not
explain (``count_audit``). ``tests/faults/chaos.py`` runs the plan and fills the report.
"""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path
from typing import Any

from bus.config.loader import load_settings
from bus.records.audit import open_audit_store
from bus.records.audit.executions import PROVIDER_SIDES

__all__ = ["Plan", "Report", "count_audit"]


@dataclasses.dataclass(frozen=True)
class Plan:
    requests: int = 300
    provider_kills: int = 1
    gateway_kills: int = 1
    outage_s: float = 2.0
    broker_restart: bool = False
    sync_every: int = 10  # every n-th request is synchronous (0: none)
    concurrency: int = 16
    agency_delay_s: float = 0.02
    timeout_s: float = 240.0  # the service's deadline
    settle_s: float = 300.0  # how long accepted requests may take to finish after the last one


@dataclasses.dataclass
class Report:
    plan: Plan
    sent: int = 0
    accepted: int = 0  # asynchronous, 202
    sync: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    ok: int = 0
    errors: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    pending: int = 0
    executed_twice: int = 0
    reexecuted_in_audit: int = 0  # side provider:re-executed: a lease taken over from the dead
    executed_twice_unexplained: int = 0  # executed twice, not audited as a re-execution
    unexplained_ids: list[str] = dataclasses.field(default_factory=list)  # the first 20, to look up
    lookups: int = 0
    lookups_unknown_to_the_client: int = 0  # a POST that failed after the gateway sent it
    in_flight_at_kills: int = 0
    answered_twice_in_audit: int = 0
    http_504: int = 0
    http_504_without_id: int = 0
    post_failures: int = 0
    dead_letters: int = 0
    duration_s: float = 0.0
    faults: list[str] = dataclasses.field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.pending + sum(self.errors.values())

    def summary(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["lost"] = self.lost
        out["sync"] = {str(k): v for k, v in self.sync.items()}
        return out


def count_audit(config: Path, report: Report, journal: collections.Counter[str]) -> None:
    """What the audit log (of the node configured in ``config``) says about the agency's
    journal: the re-executions it recorded, and the ids executed twice it does not explain."""
    settings = load_settings(config)
    assert settings.audit.url is not None
    store = open_audit_store(settings.audit.url.get_secret_value(), table=settings.audit.table)
    try:
        entries = [e for e in store.entries() if e.side in PROVIDER_SIDES]
    finally:
        store.close()
    answered = collections.Counter(e.message_id for e in entries if e.outcome == "ok")
    reexecuted = {e.message_id for e in entries if e.side == "provider:re-executed"}
    report.answered_twice_in_audit = sum(1 for c in answered.values() if c > 1)
    report.reexecuted_in_audit = len(reexecuted)
    unexplained = [i for i, c in journal.items() if i and c > 1 and i not in reexecuted]
    report.executed_twice_unexplained = len(unexplained)
    report.unexplained_ids = unexplained[:20]
