"""One connection to a state database: a SQLite file or a PostgreSQL database, the same SQL.

``StateDb(location)`` takes a path (a SQLite file, opened with ``bus.core.local_db`` on first
use: 0600, WAL) or a ``postgresql://`` URL (psycopg 3, the ``postgres`` extra, imported only for
it; ``?options=-csearch_path%3Dschema`` puts the tables in another schema). SQL is written once,
with ``?`` placeholders and ``{p}`` before each table name: the prefix is empty in a node's own
SQLite files and ``bus_`` in a shared PostgreSQL database, beside other applications' tables.
``ddl`` also fills ``{blob}`` and ``{real}`` with each database's type names; ``for_update``
is what a ``SELECT`` appends to lock its rows until the transaction ends (SQLite needs nothing:
``transaction`` begins ``IMMEDIATE``, which locks the whole file for writing).

Calls are serialised per ``StateDb`` (one connection, a lock); ``transaction`` holds the lock
for its whole block. Errors of either database become ``BusUnavailable`` here and only here,
never showing a password; a PostgreSQL connection the server dropped fails the call in flight
and is opened again for the next one. ``on_open`` runs on each new connection (create the
tables, add missing columns; in PostgreSQL under an advisory lock, one node at a time).
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bus.core.errors import BusUnavailable
from bus.core.local_db import Sync, open_local_db

__all__ = ["StateDb", "is_postgres_url", "shown_location"]

Row = tuple[Any, ...]
_DDL_LOCK = int.from_bytes(hashlib.sha256(b"bus state tables").digest()[:8], "big") >> 1


def is_postgres_url(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def shown_location(location: str | Path) -> str:
    """Where a database is, without a password (for messages and logs)."""
    if not is_postgres_url(location):
        return str(location)
    parts = urlsplit(str(location))
    port = f":{parts.port}" if parts.port else ""
    return f"postgresql://{parts.hostname or ''}{port}{parts.path}"


class StateDb:
    """See the module docstring."""

    def __init__(
        self,
        location: str | Path,
        *,
        on_open: Callable[[StateDb], None] = lambda db: None,
        synchronous: Sync | None = "NORMAL",
        what: str = "state",
    ) -> None:
        self.location = location
        self.what = what  # named in errors: "document store postgresql://host/db: …"
        self.postgres = is_postgres_url(location)
        self.shown = shown_location(location)
        self.prefix = "bus_" if self.postgres else ""
        self.for_update = " FOR UPDATE" if self.postgres else ""
        self._on_open = on_open
        self._synchronous = synchronous
        self._lock = threading.RLock()
        self._conn: Any = None
        self._depth = 0  # nested transaction blocks run inside the outermost one

    @property
    def path(self) -> Path | None:
        return None if self.postgres else Path(self.location)

    def ddl(self, text: str) -> str:
        blob, real = ("BYTEA", "DOUBLE PRECISION") if self.postgres else ("BLOB", "REAL")
        return text.replace("{blob}", blob).replace("{real}", real)

    def _sql(self, text: str) -> str:
        text = text.replace("{p}", self.prefix)
        return text.replace("?", "%s") if self.postgres else text

    def _connect(self) -> Any:
        if not self.postgres:
            return open_local_db(self.location, synchronous=self._synchronous)
        try:
            import psycopg
        except ImportError:
            raise BusUnavailable(
                f"{self.what} {self.shown}: PostgreSQL needs psycopg (pip install -e '.[postgres]')"
            ) from None
        return psycopg.connect(str(self.location), autocommit=True)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        with self._lock:
            try:
                if self._conn is None:
                    conn = self._connect()
                    self._conn = conn
                    try:
                        self._prepare()
                    except BaseException:
                        self._conn = None
                        conn.close()
                        raise
                yield self._conn
            except BusUnavailable:
                raise
            except Exception as exc:
                if not self._is_db_error(exc):
                    raise
                conn = self._conn
                if self.postgres and conn is not None and (conn.closed or conn.broken):
                    self._conn = None  # dropped by the server: opened again next time
                    with contextlib.suppress(Exception):
                        conn.close()
                raise BusUnavailable(
                    f"{self.what} {self.shown}: {type(exc).__name__}: {str(exc)[:200]}"
                ) from None

    def _prepare(self) -> None:
        """``on_open`` in one transaction, so that processes starting together take turns
        creating the tables and adding the columns an older file lacks (two adding one column
        at once fail in all but one): in SQLite an IMMEDIATE one, which locks the file; in
        PostgreSQL under an advisory lock (concurrent ``CREATE TABLE IF NOT EXISTS`` of one
        table fails in all but one)."""
        with self.transaction():
            if self.postgres:
                self.execute("SELECT pg_advisory_xact_lock(?)", (_DDL_LOCK,))
            self._on_open(self)

    def _is_db_error(self, exc: Exception) -> bool:
        if isinstance(exc, sqlite3.Error | OSError):  # OSError: the file cannot be made or opened
            return True
        if self.postgres:
            import psycopg

            return isinstance(exc, psycopg.Error)
        return False

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run one statement; how many rows it changed."""
        with self._connection() as conn:
            return int(conn.execute(self._sql(sql), tuple(args)).rowcount)

    def script(self, *statements: str) -> None:
        """Run DDL statements (``{p}``, ``{blob}``, ``{real}`` filled in), no parameters."""
        with self._connection() as conn:
            for statement in statements:
                conn.execute(self._sql(self.ddl(statement)))

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        with self._connection() as conn:
            return [tuple(r) for r in conn.execute(self._sql(sql), tuple(args)).fetchall()]

    def one(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        with self._connection() as conn:
            row = conn.execute(self._sql(sql), tuple(args)).fetchone()
            return None if row is None else tuple(row)

    def columns(self, table: str) -> set[str]:
        """The columns ``{p}table`` has (to add those a file written by an older version lacks)."""
        if self.postgres:
            found = self.rows(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = ? AND table_schema = current_schema()",
                (self.prefix + table,),
            )
        else:
            found = [(r[1],) for r in self.rows(f"PRAGMA table_info({table})")]
        return {r[0] for r in found}

    @contextlib.contextmanager
    def transaction(self) -> Iterator[StateDb]:
        """One transaction: everything in the block commits, or nothing (an exception)."""
        with self._connection() as conn:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            try:
                if self.postgres:
                    with conn.transaction():
                        yield self
                else:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield self
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                    conn.execute("COMMIT")
            finally:
                self._depth = 0

    def opened(self) -> bool:
        return self._conn is not None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
