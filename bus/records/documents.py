"""Documents: every answer the portal receives, under a unique, human-readable request number.

A request number reads ``BUS-2026-000123-7``: the node's prefix (``documents.prefix``), the
year, a sequence number of at least six digits counted per year, and a check digit. The check
digit is Luhn (mod 10) over the year and sequence digits: one digit, as on the paper a citizen
reads out at a counter, and it catches every single mistyped digit and almost every swap of two
adjacent digits (all but 09/90). ISO 7064 mod 97-10 would catch all swaps but takes two digits.

``DocumentStore`` is a small SQLite file on the gateway node (``documents.path``; by default next
to the embedded queue file), or, when the node state is a shared PostgreSQL database
(``state: postgresql://…``, ``shared``), the tables ``bus_documents`` and ``bus_counters`` there,
so that every node sharing it issues from one counter and answers ``/verify`` and
``/v1/documents`` for every number. Allocating a number and recording the document happen in
one transaction, so numbers are unique across restarts and nodes and never reused (the counter
row is locked until the document is in); nodes with separate files need distinct prefixes (each
counts on its own). A record holds the number, service, provider,
client, when it was recorded, the request's message id, the provider-signed response
envelope exactly as returned — which holds personal data: the file is created mode 0600, and
only the client who asked, or the person it is about, may read the document (``GET
/v1/documents/{number}``); the public ``GET /verify/{number}`` shows what ``public_view``
returns, which has none — and whom it is about as a keyed hash (``subject_key``: the audit
log's HMAC of the envelope's subject, ``AuditLog.subject_key``), never the PINFL itself, so a
citizen's ID token can be matched to their documents and a leaked table names nobody.

``status`` re-verifies a stored envelope now (``Seal.verify_issued``: signature and signer, the
certificate valid when issued and not revoked since).

Retention (``documents.retention_days``, ``purge``): the signed answer holds personal data, so
it is deleted once it has been kept that long after it was recorded. The row stays — number,
service, provider, client, dates, message ids, the fingerprint and when it was purged — because
it holds no personal data and the paper a citizen keeps points at ``/verify/{number}``: that
page goes on saying what was issued, by whom and when, shows the fingerprint to compare with
the paper, and says the answer is no longer kept (``status`` ``purged``: the signature can no
longer be re-checked here; whoever holds the signed answer can, ``run_bus.py verify``). The
client's ``GET /v1/documents/{number}`` answers 410 ``document-purged``. Freed pages are
overwritten (``secure_delete``; in PostgreSQL, as the server's vacuum reuses them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bus.core.envelope import Envelope, utcnow
from bus.core.errors import SignatureInvalid, UnknownDocument
from bus.core.seal import Seal
from bus.state.db import StateDb

__all__ = [
    "DocumentRecord",
    "DocumentStatus",
    "DocumentStore",
    "check_digit",
    "format_number",
    "number_fault",
    "parse_number",
    "public_view",
    "status",
]

_NUMBER = re.compile(r"^([A-Z]{2,8})-([0-9]{4})-([0-9]{6,12})-([0-9])$")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {p}counters (year INTEGER PRIMARY KEY, last INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS {p}documents (
    number TEXT PRIMARY KEY, service TEXT NOT NULL, provider TEXT NOT NULL,
    client TEXT NOT NULL, issued_at TEXT NOT NULL, recorded_at TEXT NOT NULL,
    message_id TEXT NOT NULL, response_id TEXT NOT NULL, envelope {blob} NOT NULL,
    fingerprint TEXT, purged_at TEXT, subject_key TEXT
)""",
)
# Files made before retention lack the fingerprint and purged_at, files made before citizens
# read their documents the subject_key (their rows keep it NULL); ``_open`` adds them.
_ADDED = {"fingerprint": "TEXT", "purged_at": "TEXT", "subject_key": "TEXT"}
_KEPT_INDEX = (
    "CREATE INDEX IF NOT EXISTS {p}documents_kept ON {p}documents (recorded_at) "
    "WHERE purged_at IS NULL"
)
_COLUMNS = (
    "number, service, provider, client, issued_at, recorded_at, message_id, response_id, "
    "envelope, fingerprint, purged_at, subject_key"
)


def check_digit(digits: str) -> str:
    """The Luhn check digit of a string of decimal digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled: the rightmost digit of the payload, then every other one
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def format_number(prefix: str, year: int, sequence: int) -> str:
    body = f"{year:04d}{sequence:06d}"
    return f"{prefix}-{year:04d}-{sequence:06d}-{check_digit(body)}"


def number_fault(text: str) -> str | None:
    """What is wrong with ``text`` as a request number: ``malformed``, ``mistyped`` (its check
    digit does not match) or None (well formed; it may still not have been issued)."""
    match = _NUMBER.match(text.strip().upper()) if len(text) <= 40 else None
    if match is None:
        return "malformed"
    _, year, sequence, digit = match.groups()
    return "mistyped" if check_digit(year + sequence) != digit else None


def parse_number(text: str) -> tuple[str, int, int]:
    """(prefix, year, sequence) of a well-formed number; ``UnknownDocument`` otherwise."""
    fault = number_fault(text)
    if fault == "malformed":
        raise UnknownDocument("not a request number (like BUS-2026-000123-7)")
    if fault == "mistyped":
        raise UnknownDocument("the check digit does not match: the number is mistyped")
    match = _NUMBER.match(text.strip().upper())
    assert match is not None
    prefix, year, sequence, _ = match.groups()
    return prefix, int(year), int(sequence)


@dataclass(frozen=True)
class DocumentRecord:
    number: str
    service: str
    provider: str
    client: str
    issued_at: str  # the response envelope's issued_at
    recorded_at: str  # when this node received and recorded it
    message_id: str  # the request's id (X-Bus-Message-Id)
    response_id: str
    envelope: bytes  # the signed response envelope, as returned to the client; b"" if purged
    kept_fingerprint: str | None = None  # the envelope's fingerprint, kept when it is purged
    purged_at: str | None = None  # when the envelope was deleted (retention)
    subject_key: str | None = None  # the keyed hash of whom it is about (None: not known)

    def about(self, key: str | None) -> bool:
        """Whether the document is about the person whose keyed hash is ``key``."""
        return key is not None and self.subject_key is not None and hmac.compare_digest(
            key, self.subject_key)

    @property
    def purged(self) -> bool:
        return self.purged_at is not None

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the signed envelope: printed on the document, shown by /verify."""
        if self.kept_fingerprint is not None:
            return self.kept_fingerprint
        return hashlib.sha256(self.envelope).hexdigest()


@dataclass(frozen=True)
class DocumentStatus:
    """Whether a document's signature stands now. ``state``: ``valid``, ``revoked``,
    ``untrusted`` (the certificate), ``invalid`` (the signature)."""

    state: str
    detail: str
    signer: str | None = None
    kid: str | None = None
    serial: str | None = None
    certificate_expires: str | None = None

    @property
    def valid(self) -> bool:
        return self.state == "valid"


def status(seal: Seal, record: DocumentRecord) -> DocumentStatus:
    """Re-verify a stored document now against the node's trust store."""
    if record.purged:
        return DocumentStatus(
            "purged",
            f"the signed answer was deleted on {str(record.purged_at)[:10]} after the retention "
            "period; its holder can still verify it (compare the fingerprint)",
        )
    try:
        envelope = Envelope.from_json(record.envelope)
        trusted = seal.verify_issued(envelope)
    except SignatureInvalid as exc:
        state = {"certificate-revoked": "revoked", "certificate-untrusted": "untrusted"}.get(
            exc.code, "invalid"
        )
        return DocumentStatus(state, f"{exc.reason}: {exc.detail}")
    except Exception as exc:  # a stored record that no longer parses: say so, do not crash
        return DocumentStatus("invalid", f"unreadable record: {type(exc).__name__}")
    expires = trusted.not_after.isoformat() if trusted.not_after else None
    detail = f"signed by {trusted.member} with {trusted.kid}"
    if trusted.not_after is not None and trusted.not_after < seal.clock():
        detail += " (the certificate has expired since; the signature was made while it was valid)"
    return DocumentStatus("valid", detail, trusted.member, trusted.kid, trusted.serial, expires)


def public_view(record: DocumentRecord, st: DocumentStatus) -> dict[str, Any]:
    """What anyone holding the number may see: no payload, subject or user."""
    return {
        "number": record.number,
        "service": record.service,
        "provider": record.provider,
        "client": record.client,
        "issued_at": record.issued_at,
        "fingerprint": record.fingerprint,
        "purged_at": record.purged_at,
        "signature": {
            "state": st.state,
            "valid": st.valid,
            "detail": st.detail,
            "signer": st.signer,
            "key_id": st.kid,
            "certificate_serial": st.serial,
            "certificate_expires": st.certificate_expires,
        },
    }


class DocumentStore:
    """Request numbers and document records (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        prefix: str = "BUS",
        clock: Callable[[], dt.datetime] = utcnow,
        shared: str | None = None,
        subject_key: Callable[[str | None], str | None] | None = None,
    ) -> None:
        self.path = path
        self.prefix = prefix
        self.shared = shared
        self._subject_key = subject_key or (lambda subject: None)
        self._clock = clock
        self._db = StateDb(shared or path, on_open=self._open, what="document store")

    def exists(self) -> bool:
        """Whether there can be documents to purge (a node that issued none has no file)."""
        return self.shared is not None or self.path.exists()

    @staticmethod
    def _open(db: StateDb) -> None:
        if not db.postgres:
            db.execute("PRAGMA secure_delete=ON")  # purged answers do not linger in free pages
        db.script(*_SCHEMA)
        present = db.columns("documents")
        for column, kind in _ADDED.items():
            if column not in present:
                db.execute(f"ALTER TABLE {{p}}documents ADD COLUMN {column} {kind}")
        db.script(_KEPT_INDEX)

    def issue(self, envelope: Envelope, *, message_id: str) -> DocumentRecord:
        """Allocate the next number and record ``envelope`` under it (one transaction)."""
        now = self._clock()
        body = envelope.to_json()
        with self._db.transaction() as db:
            row = db.one(
                "INSERT INTO {p}counters (year, last) VALUES (?, 1) "
                "ON CONFLICT (year) DO UPDATE SET last = {p}counters.last + 1 RETURNING last",
                (now.year,),
            )
            assert row is not None
            record = DocumentRecord(
                number=format_number(self.prefix, now.year, int(row[0])),
                service=envelope.service,
                provider=envelope.provider,
                client=envelope.client,
                issued_at=str(orjson.loads(body)["issued_at"]),  # as signed
                recorded_at=now.isoformat(),
                message_id=message_id,
                response_id=envelope.id,
                envelope=body,
                subject_key=self._subject_key(envelope.subject),
            )
            db.execute(
                f"INSERT INTO {{p}}documents ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "NULL, NULL, ?)",
                (
                    record.number, record.service, record.provider, record.client,
                    record.issued_at, record.recorded_at, record.message_id,
                    record.response_id, record.envelope, record.subject_key,
                ),
            )  # fmt: skip
        return record

    def get(self, number: str) -> DocumentRecord:
        """The record of ``number``; ``UnknownDocument`` if the number is malformed or unknown."""
        prefix, year, sequence = parse_number(number)
        canonical = format_number(prefix, year, sequence)
        row = self._db.one(f"SELECT {_COLUMNS} FROM {{p}}documents WHERE number = ?", (canonical,))
        if row is None:
            where = "on this bus" if self.shared else "by this node"
            raise UnknownDocument(f"no document {canonical} was issued {where}")
        names = ("number", "service", "provider", "client", "issued_at", "recorded_at")
        return DocumentRecord(
            **dict(zip(names, row[:6], strict=True)),
            message_id=row[6],
            response_id=row[7],
            envelope=bytes(row[8]),
            kept_fingerprint=row[9],
            purged_at=row[10],
            subject_key=row[11],
        )

    def purge(
        self, before: dt.datetime, *, batch: int = 500, going: Callable[[], bool] = lambda: True
    ) -> int:
        """Delete the signed answers recorded before ``before``, keeping each row's public part
        and fingerprint (see the module docstring); how many. In transactions of ``batch``
        rows, so that issuing a number waits for one batch at most; ``going`` is asked before
        each (a stopping node stops there)."""
        cutoff = before.astimezone(dt.UTC).isoformat()  # recorded_at is UTC ISO 8601 text
        total = 0
        while going():
            now = self._clock().isoformat()
            with self._db.transaction() as db:
                rows = db.rows(
                    "SELECT number, envelope FROM {p}documents "
                    "WHERE purged_at IS NULL AND recorded_at < ? LIMIT ?" + db.for_update,
                    (cutoff, batch),
                )
                for n, env in rows:
                    db.execute(
                        "UPDATE {p}documents SET envelope = ?, fingerprint = ?, purged_at = ? "
                        "WHERE number = ?",
                        (b"", hashlib.sha256(bytes(env)).hexdigest(), now, n),
                    )
            total += len(rows)
            if len(rows) < batch:
                break
        return total

    def close(self) -> None:
        self._db.close()
