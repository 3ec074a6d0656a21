"""The audit log: an append-only, hash-chained record of every exchange and every refusal.

An entry (``AuditEntry``) holds the message id, correlation, client, provider, service, user,
purpose, the subject as a keyed hash (HMAC-SHA256 with the bus's ``audit.secret``: the log does
not reveal PINFLs, yet a look-up by PINFL works for whoever holds the secret), the outcome code,
which side wrote it (``provider``: an answer the provider's node gave; ``gateway``: a refusal
the gateway gave without a provider's answer; ``operator:<name>``: what an agency's operator did
with a task of a ``manual`` service — the answer given, outcome as above, or the task read,
outcome ``read``, since it shows the person's identifiers), when it was asked and recorded, and
the SHA-256 of the signed answer; never a payload. Each entry's ``hash`` is SHA-256 over the RFC
8785 canonical JSON of its other fields but ``seq`` (where the store keeps it), ``prev_hash``
(the previous entry's hash) among them, so editing, deleting or reordering any entry breaks the
chain at that place (``verify``). Deleting the newest entries leaves a shorter valid chain, and
whoever can write the database can recompute every hash after an edit: compare the head that
``audit verify`` prints with one noted elsewhere earlier (``--head``) to detect either.

Storage is an ``AuditStore`` (``chain``): ``SqliteAuditStore`` (``sqlite``) or
``PostgresAuditStore`` (``postgres``), opened by ``open_audit_store`` from the ``audit.url``;
``AuditLog`` (``log``) is the writer in front of it (group commit, the subject's keyed hash).
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

