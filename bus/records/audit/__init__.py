"""The audit log: an append-only, hash-chained record of every exchange and every refusal.

What an entry holds, how it is hashed and how the chain is verified: ``chain``. Storage is an
``AuditStore`` (``chain``): ``SqliteAuditStore`` (``sqlite``) or ``PostgresAuditStore``
(``postgres``), opened by ``open_audit_store`` from the ``audit.url``; ``AuditLog`` (``log``) is
the writer in front of it (group commit, the subject's keyed hash).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from bus.core.envelope import utcnow
from bus.records.audit.chain import (
    ENTRY_FIELDS,
    GENESIS,
    AuditEntry,
    AuditNotConfigured,
    AuditRecord,
    AuditStore,
    Break,
    chain,
    entry_hash,
    handed_out,
    verify,
)
from bus.records.audit.log import AuditLog
from bus.records.audit.sqlite import SqliteAuditStore

__all__ = [
    "ENTRY_FIELDS",
    "GENESIS",
    "AuditEntry",
    "AuditLog",
    "AuditNotConfigured",
    "AuditRecord",
    "AuditStore",
    "Break",
    "SqliteAuditStore",
    "chain",
    "entry_hash",
    "handed_out",
    "open_audit_store",
    "verify",
]


def open_audit_store(
    url: str, *, table: str = "bus_audit", clock: Callable[[], dt.datetime] = utcnow
) -> AuditStore:
    """``sqlite:///PATH`` (relative) or ``sqlite:////PATH`` (absolute), or ``postgresql://…``."""
    if url.startswith("sqlite:///"):
        return SqliteAuditStore(url.removeprefix("sqlite:///"), clock=clock)
    if url.startswith(("postgresql://", "postgres://")):
        from bus.records.audit.postgres import PostgresAuditStore

        return PostgresAuditStore(url, table=table, clock=clock)
    raise ValueError("audit url must start with sqlite:/// or postgresql://")

