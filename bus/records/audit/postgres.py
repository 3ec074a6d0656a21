"""The audit log in PostgreSQL (psycopg 3): ``audit.url: postgresql://user@host:5432/db``.

The same contract as ``bus.records.audit.sqlite.SqliteAuditStore``: ``append`` chains and inserts a
batch in
one transaction, under a transaction-level advisory lock so that several nodes writing one table
keep one chain; the commit returns once PostgreSQL has it durable (``synchronous_commit`` as the
server has it, ``on`` by default). The table (``audit.table``, optionally ``schema.table``) is
created if missing, with triggers that refuse UPDATE, DELETE and TRUNCATE. psycopg errors become
``BusUnavailable`` here, and only here. A connection the server dropped (a restart) fails the
batch in flight and is opened again for the next one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql

from bus.core.envelope import utcnow
from bus.core.errors import BusUnavailable
from bus.records.audit.chain import ENTRY_FIELDS, GENESIS, AuditEntry, AuditRecord, chain

__all__ = ["PostgresAuditStore"]

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$")


class PostgresAuditStore:
    def __init__(
        self,
        url: str,
        *,
        table: str = "bus_audit",
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        if not _NAME.match(table):
            raise ValueError(f"audit table {table!r} is not a plain [schema.]name")
        self.url = url
        self.clock = clock
        parts = table.split(".")
        self._table = sql.Identifier(*parts)
        self._name = table
        # one advisory lock key per table: appenders to one table queue up, others do not
        self._lock_key = int.from_bytes(hashlib.sha256(table.encode()).digest()[:8], "big") >> 1
        self._lock = threading.Lock()
        try:
            self._db = psycopg.connect(url, autocommit=False)
            self._create(parts)
        except psycopg.Error as exc:
            raise BusUnavailable(f"audit database unavailable: {exc}") from exc

    def _create(self, parts: list[str]) -> None:
        t = self._table
        trigger_fn = sql.Identifier(*parts[:-1], f"{parts[-1]}_append_only")
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            if len(parts) == 2:
                self._db.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(parts[0]))
                )
            self._db.execute(
                sql.SQL(
                    """CREATE TABLE IF NOT EXISTS {} (
                    seq BIGINT PRIMARY KEY,
                    message_id TEXT NOT NULL, correlation TEXT NOT NULL, client TEXT NOT NULL,
                    provider TEXT NOT NULL, service TEXT NOT NULL, "user" TEXT NOT NULL,
                    purpose TEXT NOT NULL, subject TEXT, outcome TEXT NOT NULL,
                    side TEXT NOT NULL, requested_at TEXT NOT NULL, response_digest TEXT,
                    recorded_at TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)"""
                ).format(t)
            )
            self._db.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (subject)").format(
                    sql.Identifier(f"{parts[-1]}_subject"), t
                )
            )
            self._db.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (recorded_at)").format(
                    sql.Identifier(f"{parts[-1]}_recorded"), t
                )
            )
            self._db.execute(
                sql.SQL(
                    """CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$"""
                ).format(trigger_fn)
            )
            self._db.execute(
                sql.SQL(
                    """CREATE OR REPLACE TRIGGER {} BEFORE UPDATE OR DELETE ON {}
                    FOR EACH ROW EXECUTE FUNCTION {}()"""
                ).format(sql.Identifier(f"{parts[-1]}_no_change"), t, trigger_fn)
            )
            self._db.execute(
                sql.SQL(
                    """CREATE OR REPLACE TRIGGER {} BEFORE TRUNCATE ON {}
                    FOR EACH STATEMENT EXECUTE FUNCTION {}()"""
                ).format(sql.Identifier(f"{parts[-1]}_no_truncate"), t, trigger_fn)
            )

    def _connection(self) -> psycopg.Connection[Any]:
        """The writer's connection, opened again if the server dropped it (a restart)."""
        if self._db.broken or self._db.closed:
            self._db.close()
            self._db = psycopg.connect(self.url, autocommit=False)
        return self._db

    def _columns(self) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(f) for f in ENTRY_FIELDS)

    def append(self, records: Sequence[AuditRecord]) -> list[AuditEntry]:
        if not records:
            return []
        insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            self._table,
            self._columns(),
            sql.SQL(", ").join(sql.Placeholder() * len(ENTRY_FIELDS)),
        )
        try:
            with self._lock, self._connection().transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                row = self._db.execute(
                    sql.SQL("SELECT seq, hash FROM {} ORDER BY seq DESC LIMIT 1").format(
                        self._table
                    )
                ).fetchone()
                seq, prev = (int(row[0]), str(row[1])) if row else (0, GENESIS)
                recorded_at = self.clock().astimezone(dt.UTC).isoformat(timespec="microseconds")
                entries = chain(records, after_seq=seq, after_hash=prev, recorded_at=recorded_at)
                with self._db.cursor() as cur:
                    cur.executemany(
                        insert, [tuple(getattr(e, k) for k in ENTRY_FIELDS) for e in entries]
                    )
        except psycopg.Error as exc:
            raise BusUnavailable(f"audit log not writable: {exc}") from exc
        return entries

    def entries(
        self, *, since: dt.datetime | None = None, subject: str | None = None
    ) -> Iterator[AuditEntry]:
        where: list[sql.Composable] = []
        args: list[str] = []
        if since is not None:
            where.append(sql.SQL("recorded_at >= %s"))
            args.append(since.astimezone(dt.UTC).isoformat(timespec="microseconds"))
        if subject is not None:
            where.append(sql.SQL("subject = %s"))
            args.append(subject)
        query = sql.SQL("SELECT {} FROM {}").format(self._columns(), self._table)
        if where:
            query = query + sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
        query = query + sql.SQL(" ORDER BY seq")
        try:
            # a connection of its own, read in chunks: the writer goes on meanwhile
            with psycopg.connect(self.url) as db, db.cursor(name="audit_read") as cur:
                cur.execute(query, args)
                for row in cur:
                    yield AuditEntry(**dict(zip(ENTRY_FIELDS, row, strict=True)))
        except psycopg.Error as exc:
            raise BusUnavailable(f"audit log not readable: {exc}") from exc

    def check(self) -> str:
        try:
            with self._lock, self._connection().transaction():
                row = self._db.execute(
                    "SELECT has_table_privilege(%s, 'INSERT')", (self._name,)
                ).fetchone()
        except psycopg.Error as exc:
            raise BusUnavailable(f"audit database unavailable: {exc}") from exc
        if not row or not row[0]:
            raise BusUnavailable("no INSERT privilege on the audit table")
        return "postgresql writable"

    def close(self) -> None:
        with self._lock:
            self._db.close()
