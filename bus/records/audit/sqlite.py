"""The audit log in one SQLite file: ``audit.url: sqlite:///PATH``.

Mode 0600, WAL, ``synchronous=FULL`` (a commit is on disk); several processes can share the file,
each append chained inside its own transaction. UPDATE and DELETE are refused by triggers.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from bus.core.envelope import utcnow
from bus.core.errors import BusUnavailable
from bus.core.local_db import open_local_db
from bus.records.audit.chain import (
    ENTRY_FIELDS,
    GENESIS,
    AuditEntry,
    AuditRecord,
    chain,
    now_iso,
)

__all__ = ["SqliteAuditStore"]


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL, correlation TEXT NOT NULL, client TEXT NOT NULL,
    provider TEXT NOT NULL, service TEXT NOT NULL, user TEXT NOT NULL, purpose TEXT NOT NULL,
    subject TEXT, outcome TEXT NOT NULL, side TEXT NOT NULL, requested_at TEXT NOT NULL,
    response_digest TEXT, recorded_at TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_subject ON audit (subject);
CREATE INDEX IF NOT EXISTS audit_recorded ON audit (recorded_at);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
_COLUMNS = ", ".join(ENTRY_FIELDS)


class SqliteAuditStore:
    """One SQLite file (mode 0600), WAL, ``synchronous=FULL``; shareable by processes."""

    def __init__(
        self, path: Path | str, *, clock: Callable[[], dt.datetime] = utcnow
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.Lock()
        self._db = self._connect()
        with self._lock:
            self._db.executescript(_SQLITE_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return open_local_db(self.path, timeout=30, synchronous="FULL")

    def append(self, records: Sequence[AuditRecord]) -> list[AuditEntry]:
        if not records:
            return []
        try:
            with self._lock:
                db = self._db
                db.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes too
                try:
                    row = db.execute(
                        "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                    ).fetchone()
                    seq, prev = (row[0], row[1]) if row else (0, GENESIS)
                    entries = chain(
                        records, after_seq=seq, after_hash=prev, recorded_at=now_iso(self.clock)
                    )
                    db.executemany(
                        f"INSERT INTO audit ({_COLUMNS}) VALUES "
                        f"({', '.join('?' * len(ENTRY_FIELDS))})",
                        [tuple(getattr(e, k) for k in ENTRY_FIELDS) for e in entries],
                    )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise BusUnavailable(f"audit log not writable: {exc}") from exc
        return entries

    def entries(
        self, *, since: dt.datetime | None = None, subject: str | None = None
    ) -> Iterator[AuditEntry]:
        where, args = [], []
        if since is not None:
            where.append("recorded_at >= ?")
            args.append(since.astimezone(dt.UTC).isoformat(timespec="microseconds"))
        if subject is not None:
            where.append("subject = ?")
            args.append(subject)
        sql = f"SELECT {_COLUMNS} FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        db = self._connect()  # a reader of its own: writes go on meanwhile (WAL)
        try:
            for row in db.execute(sql + " ORDER BY seq", args):
                yield AuditEntry(**dict(zip(ENTRY_FIELDS, row, strict=True)))
        except sqlite3.Error as exc:
            raise BusUnavailable(f"audit log not readable: {exc}") from exc
        finally:
            db.close()

    def check(self) -> str:
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")  # the write lock can be had
                self._db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise BusUnavailable(f"audit log not writable: {exc}") from exc
        return "sqlite writable"

    def close(self) -> None:
        with self._lock:
            self._db.close()

