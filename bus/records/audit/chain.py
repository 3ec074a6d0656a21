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

Storage is an ``AuditStore`` (this module's protocol: ``append`` a batch in one durable
transaction, chained inside it so several processes can share one log; read ``entries``;
``check`` writability): ``bus.records.audit.sqlite`` and ``bus.records.audit.postgres``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

from signing import canonical_json

__all__ = [
    "ENTRY_FIELDS",
    "GENESIS",
    "AuditEntry",
    "AuditNotConfigured",
    "AuditRecord",
    "AuditStore",
    "Break",
    "chain",
    "entry_hash",
    "handed_out",
    "now_iso",
    "verify",
]

GENESIS = "0" * 64  # prev_hash of the first entry


class AuditNotConfigured(ValueError):
    """A node cannot run without its audit log's settings (the subject key)."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What a caller records; the store adds position, time and chain (``AuditEntry``)."""

    message_id: str
    correlation: str
    client: str
    provider: str
    service: str
    user: str
    purpose: str
    subject: str | None  # HMAC-SHA256 hex of the identifier, never the identifier
    outcome: str
    side: str  # provider | gateway
    requested_at: str  # ISO 8601, UTC
    response_digest: str | None  # SHA-256 hex of the signed answer


@dataclass(frozen=True, slots=True)
class AuditEntry(AuditRecord):
    seq: int
    recorded_at: str
    prev_hash: str
    hash: str

    def hashed_fields(self) -> dict[str, Any]:
        """Everything but ``hash`` and ``seq``: the order is the chain of ``prev_hash``es,
        ``seq`` is where the store keeps the entry."""
        return {name: getattr(self, name) for name in HASHED_FIELDS}


def handed_out(entry: AuditRecord) -> bool:
    """Whether data about the subject went to the asker: an answer of a provider's node or of
    an agency's operator (what a citizen's "who read my data" report lists)."""
    by_provider = entry.side == "provider" or entry.side.startswith("operator:")
    return entry.outcome == "ok" and by_provider


RECORD_FIELDS = tuple(f.name for f in fields(AuditRecord))
ENTRY_FIELDS = tuple(f.name for f in fields(AuditEntry))
HASHED_FIELDS = tuple(f for f in ENTRY_FIELDS if f not in ("hash", "seq"))  # all str or None


def _digest(hashed: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(hashed)).hexdigest()


def entry_hash(entry: AuditEntry) -> str:
    return _digest(entry.hashed_fields())


def chain(
    records: Sequence[AuditRecord], *, after_seq: int, after_hash: str, recorded_at: str
) -> list[AuditEntry]:
    """``records`` as entries following the entry (``after_seq``, ``after_hash``)."""
    out: list[AuditEntry] = []
    seq, prev = after_seq, after_hash
    for record in records:
        seq += 1
        hashed = {k: getattr(record, k) for k in RECORD_FIELDS}
        hashed["recorded_at"], hashed["prev_hash"] = recorded_at, prev
        prev = _digest(hashed)  # what entry_hash gives for the entry built here
        out.append(AuditEntry(**hashed, seq=seq, hash=prev))
    return out


@dataclass(frozen=True, slots=True)
class Break:
    """The first broken link, at the entry ``seq``."""

    seq: int
    kind: str  # edited | missing | out-of-order
    detail: str


def verify(entries: Iterator[AuditEntry]) -> tuple[int, str, Break | None]:
    """Walk the chain in ``seq`` order: (entries that hold, head hash, first break or None).

    ``edited``: an entry does not match its own hash. ``missing``: a gap in ``seq``.
    ``out-of-order``: an entry does not name the hash of the one before it (entries swapped,
    moved, inserted, or deleted and renumbered).
    """
    count, prev_seq, prev_hash = 0, 0, GENESIS
    for entry in entries:
        if entry_hash(entry) != entry.hash:
            return count, prev_hash, Break(
                entry.seq, "edited", f"entry {entry.seq} does not match its hash"
            )
        if entry.seq != prev_seq + 1:
            return count, prev_hash, Break(
                entry.seq, "missing", f"entries {prev_seq + 1}..{entry.seq - 1} are missing"
            )
        if entry.prev_hash != prev_hash:
            return count, prev_hash, Break(
                entry.seq,
                "out-of-order",
                f"entry {entry.seq} does not follow entry {prev_seq} (its prev_hash names "
                "another entry: swapped, moved, inserted, or deleted and renumbered)",
            )
        count, prev_seq, prev_hash = count + 1, entry.seq, entry.hash
    return count, prev_hash, None


class AuditStore(Protocol):
    """Where entries live; every method may raise ``BusUnavailable``."""

    def append(self, records: Sequence[AuditRecord]) -> list[AuditEntry]:
        """Chain and write ``records`` in one transaction, durable when this returns."""
        ...

    def entries(
        self, *, since: dt.datetime | None = None, subject: str | None = None
    ) -> Iterator[AuditEntry]:
        """Entries by ``seq``; ``since``: recorded at or after; ``subject``: this HMAC only."""
        ...

    def check(self) -> str:
        """Raise unless an entry could be written now; a short detail otherwise."""
        ...

    def close(self) -> None: ...


def now_iso(clock: Callable[[], dt.datetime]) -> str:
    return clock().astimezone(dt.UTC).isoformat(timespec="microseconds")

