"""The operator inbox: the tasks of ``manual`` services waiting for an official's answer.

One ``OperatorInbox`` is one store of tasks, in either of two places:

* a SQLite file (``inbox.db`` in the node's data folder by default; mode 0600: the requests name
  citizens), shared by the node and the ``run_bus.py inbox`` commands on that machine;
* a PostgreSQL database (``postgresql://user@host:5432/db``; table ``bus_inbox_tasks``, created
  if missing; ``?options=-csearch_path%3Dschema`` puts it in another schema), shared by every node
  hosting the service: with several nodes consuming a manual service's queue, each files its
  requests there and an operator sees and answers all of them on any node. Who may read it is
  the database's access control. psycopg (the ``postgres`` extra) is imported only for it.

The same SQL runs on both (``?`` placeholders, ``ON CONFLICT DO NOTHING``). A task is claimed by
one conditional ``UPDATE`` (``open`` → ``sending``), so two operators — on one node or on two —
cannot both answer it. Errors of either database become ``InboxUnavailable`` (never showing a
password); a PostgreSQL connection the server dropped fails the call in flight and is opened
again for the next one, and a node starts while its PostgreSQL inbox is away (filing then fails
as ``ProviderUnavailable``: the request is delivered again later).

A manual service that files each application once gives ``file`` a key (the application's id):
a second request with the same key is refused with ``DuplicateTask`` naming the first, unless
that one expired unanswered.

States of a task: ``open`` → ``sending`` (claimed: the signed answer stored) → ``audited`` (its
audit entry written: free to deliver) → ``answered`` or ``rejected`` (delivered); ``open`` →
``expired`` once the asker's deadline passed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from bus.core.local_db import open_local_db

__all__ = [
    "DuplicateTask",
    "InboxUnavailable",
    "OperatorInbox",
    "Task",
    "TaskClosed",
    "Ticket",
    "is_database_url",
]

log = logging.getLogger("adapters.operator_inbox")

_STATES = "'open', 'sending', 'audited', 'answered', 'rejected', 'expired'"
_SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, service TEXT NOT NULL, client TEXT NOT NULL, purpose TEXT NOT NULL,
    "user" TEXT NOT NULL, subject TEXT, request TEXT NOT NULL, envelope BLOB NOT NULL,
    reply_to TEXT NOT NULL, expires_at REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ({_STATES})),
    outcome TEXT, answer BLOB, operator TEXT, filed_at REAL NOT NULL, closed_at REAL
);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state, filed_at);
"""
# A service that files an application once (``ManualOptions.dedupe_on``) keeps its key beside
# the task; an inbox made before keys existed gets the column when it is opened.
_KEY_INDEX = ("CREATE UNIQUE INDEX IF NOT EXISTS {t}_key ON {t} (service, dedupe_key) "
              "WHERE dedupe_key IS NOT NULL AND state <> 'expired'")
_PG_TABLE = "bus_inbox_tasks"
_PG_SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS {_PG_TABLE} (
    id TEXT PRIMARY KEY, service TEXT NOT NULL, client TEXT NOT NULL, purpose TEXT NOT NULL,
    "user" TEXT NOT NULL, subject TEXT, request TEXT NOT NULL, envelope BYTEA NOT NULL,
    reply_to TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL CHECK (state IN ({_STATES})),
    outcome TEXT, answer BYTEA, operator TEXT, filed_at DOUBLE PRECISION NOT NULL,
    closed_at DOUBLE PRECISION)""",
    f"CREATE INDEX IF NOT EXISTS {_PG_TABLE}_state ON {_PG_TABLE} (state, filed_at)",
    f"ALTER TABLE {_PG_TABLE} ADD COLUMN IF NOT EXISTS dedupe_key TEXT",
    _KEY_INDEX.format(t=_PG_TABLE),
)
# nodes creating the table at the same moment take turns
_PG_LOCK = int.from_bytes(hashlib.sha256(_PG_TABLE.encode()).digest()[:8], "big") >> 1
_COLUMNS = (
    'id, service, client, purpose, "user", subject, request, envelope, reply_to, expires_at, '
    "state, outcome, answer, operator, filed_at, closed_at"
)
_SAID = {"sending": "being answered", "audited": "answered (being delivered)"}


class DuplicateTask(Exception):
    """A task of the same service with the same key (an application id) is filed already."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"filed already as task {task_id}")
        self.task_id = task_id


class TaskClosed(Exception):
    """The task is not open (answered, rejected or expired already), or does not exist."""


class InboxUnavailable(Exception):
    """The inbox's database cannot be read or written now."""


@dataclass(frozen=True)
class Ticket:
    """What the bus hands a deferring adapter with the request: who asked, where to answer."""

    id: str  # the request's message id
    service: str
    client: str
    purpose: str
    user: str
    subject: str | None
    envelope: bytes  # the client's signed request, kept to build and sign the answer
    reply_to: str
    expires_at: float  # unix seconds: nobody waits for an answer after this


@dataclass(frozen=True)
class Task:
    id: str
    service: str
    client: str
    purpose: str
    user: str
    subject: str | None
    request: dict[str, object]
    envelope: bytes
    reply_to: str
    expires_at: float
    state: str
    outcome: str | None
    answer: bytes | None
    operator: str | None
    filed_at: float
    closed_at: float | None


def _task(row: tuple[object, ...]) -> Task:
    values = list(row)
    values[6] = orjson.loads(values[6])  # type: ignore[arg-type]
    for i in (7, 12):  # bytes, whichever driver read them
        if values[i] is not None:
            values[i] = bytes(values[i])  # type: ignore[call-overload]
    return Task(*values)  # type: ignore[arg-type]


def is_database_url(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def _shown(location: str) -> str:
    """Where the inbox is, without a password."""
    if not is_database_url(location):
        return location
    parts = urlsplit(location)
    return f"postgresql://{parts.hostname or ''}{':' if parts.port else ''}{parts.port or ''}" \
           f"{parts.path}"


class OperatorInbox:
    """The tasks of one inbox; safe across threads, processes and (on PostgreSQL) nodes."""

    def __init__(self, location: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.location = str(location)
        self.shown = _shown(self.location)
        self._pg = is_database_url(location)
        self._table = _PG_TABLE if self._pg else "tasks"
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        self._db: Any = None
        try:
            with self._conn():  # created (and checked) now, not at the first request
                pass
        except InboxUnavailable as exc:
            if not self._pg:
                raise  # a file that cannot be opened is a setup error: say so at start
            log.warning("operator inbox not reachable yet; tried again at its next use",
                        extra={"bus": {"inbox": self.shown, "error": str(exc)}})

    def _open(self) -> Any:
        if not self._pg:
            local = open_local_db(self.location)
            # One process at a time sets the schema up (a node's worker processes open the file
            # at the same moment): in one IMMEDIATE transaction, the column checked inside it.
            try:
                local.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _SQLITE_SCHEMA.split(";"):
                        if statement.strip():
                            local.execute(statement)
                    columns = {row[1] for row in local.execute("PRAGMA table_info(tasks)")}
                    if "dedupe_key" not in columns:
                        local.execute("ALTER TABLE tasks ADD COLUMN dedupe_key TEXT")
                    local.execute(_KEY_INDEX.format(t="tasks"))
                    local.execute("COMMIT")
                except BaseException:
                    local.execute("ROLLBACK")
                    raise
            except BaseException:
                local.close()
                raise
            return local
        try:
            import psycopg
        except ImportError:
            raise InboxUnavailable(
                f"inbox {self.shown}: a PostgreSQL inbox needs psycopg "
                "(pip install -e '.[postgres]')"
            ) from None
        shared = psycopg.connect(self.location, autocommit=True)
        try:
            with shared.transaction():
                shared.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK,))
                for statement in _PG_SCHEMA:
                    shared.execute(statement)
        except BaseException:
            shared.close()
            raise
        return shared

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"inbox {self.shown} is closed")
            try:
                if self._db is None:
                    self._db = self._open()
                yield self._db
            except (TaskClosed, RuntimeError):
                raise
            except Exception as exc:
                if not self._is_db_error(exc):
                    raise
                if self._pg and self._db is not None and self._db.closed:
                    self._db = None  # dropped by the server: opened again next time
                raise InboxUnavailable(
                    f"inbox {self.shown}: {type(exc).__name__}: {str(exc)[:200]}"
                ) from None

    def _is_db_error(self, exc: Exception) -> bool:
        if isinstance(exc, sqlite3.Error):
            return True
        if self._pg:
            try:
                import psycopg
            except ImportError:
                return False
            return isinstance(exc, psycopg.Error)
        return False

    def _run(self, db: Any, query: str, args: tuple[object, ...] = ()) -> Any:
        """``query`` (``?`` placeholders, ``{t}`` the table) on either database."""
        text = query.replace("{t}", self._table)
        return db.execute(text.replace("?", "%s") if self._pg else text, args)

    def file(self, ticket: Ticket, request: dict[str, object], *, key: str | None = None) -> bool:
        """Keep the task; False if it was filed before (the same request delivered again).

        ``key`` (an application id): ``DuplicateTask`` if another request of the same service
        with this key is filed and not expired — the application is filed once."""
        if key is not None:
            self.expire()  # an application whose asker stopped waiting may be filed anew
        with self._conn() as db:
            cursor = self._run(
                db,
                'INSERT INTO {t} (id, service, client, purpose, "user", subject, request, '
                "envelope, reply_to, expires_at, state, filed_at, dedupe_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?) ON CONFLICT DO NOTHING",
                (ticket.id, ticket.service, ticket.client, ticket.purpose, ticket.user,
                 ticket.subject, orjson.dumps(request).decode(), ticket.envelope,
                 ticket.reply_to, ticket.expires_at, self._clock(), key),
            )
            if cursor.rowcount == 1:
                return True
            if key is None or self._run(db, "SELECT 1 FROM {t} WHERE id = ?",
                                        (ticket.id,)).fetchone() is not None:
                return False
            first = self._run(
                db, "SELECT id FROM {t} WHERE service = ? AND dedupe_key = ? "
                "AND state <> 'expired'", (ticket.service, key),
            ).fetchone()
        if first is None:  # expired between the two statements: file it now
            return self.file(ticket, request, key=key)
        raise DuplicateTask(str(first[0]))

    def get(self, task_id: str) -> Task | None:
        with self._conn() as db:
            row = self._run(db, f"SELECT {_COLUMNS} FROM {{t}} WHERE id = ?",
                            (task_id,)).fetchone()
        return None if row is None else _task(row)

    def tasks(self, *, states: tuple[str, ...] = ("open",), services: list[str] | None = None,
              limit: int = 200) -> list[Task]:
        """Tasks in ``states``, oldest first (of ``services`` if given)."""
        self.expire()
        query = f"SELECT {_COLUMNS} FROM {{t}} WHERE state IN ({','.join('?' * len(states))})"
        args: list[object] = list(states)
        if services is not None:
            query += f" AND service IN ({','.join('?' * len(services))})"
            args += services
        with self._conn() as db:
            rows = self._run(db, query + " ORDER BY filed_at LIMIT ?", (*args, limit)).fetchall()
        return [_task(row) for row in rows]

    def expire(self) -> int:
        """Close the open tasks whose asker stopped waiting; how many."""
        now = self._clock()
        with self._conn() as db:
            return int(self._run(
                db, "UPDATE {t} SET state = 'expired', closed_at = ? "
                "WHERE state = 'open' AND expires_at <= ?", (now, now),
            ).rowcount)

    def close_task(self, task_id: str, *, operator: str, outcome: str, answer: bytes) -> None:
        """Store the signed ``answer`` (state ``sending``); ``TaskClosed`` if not open now."""
        now = self._clock()
        with self._conn() as db:
            changed = self._run(
                db, "UPDATE {t} SET state = 'sending', outcome = ?, answer = ?, operator = ?, "
                "closed_at = ? WHERE id = ? AND state = 'open' AND expires_at > ?",
                (outcome, answer, operator, now, task_id, now),
            ).rowcount
        if changed != 1:
            task = self.get(task_id)
            if task is None:
                raise TaskClosed(f"no task {task_id!r} in this inbox")
            state = "expired" if task.state == "open" else _SAID.get(task.state, task.state)
            raise TaskClosed(f"task {task_id} is {state}; it cannot be answered again")

    def reopen(self, task_id: str) -> None:
        """Undo ``close_task`` (the answer could not be recorded): the task is open again."""
        with self._conn() as db:
            self._run(
                db, "UPDATE {t} SET state = 'open', outcome = NULL, answer = NULL, "
                "operator = NULL, closed_at = NULL WHERE id = ? AND state = 'sending'",
                (task_id,),
            )

    def audited(self, task_id: str) -> None:
        """The answer's audit entry is durable: it may be delivered."""
        with self._conn() as db:
            self._run(db, "UPDATE {t} SET state = 'audited' WHERE id = ? AND state = 'sending'",
                      (task_id,))

    def sent(self, task_id: str) -> None:
        """The answer was delivered to the transport: ``answered`` or ``rejected``."""
        with self._conn() as db:
            self._run(
                db, "UPDATE {t} SET state = CASE WHEN outcome = 'ok' THEN 'answered' "
                "ELSE 'rejected' END WHERE id = ? AND state IN ('sending', 'audited')",
                (task_id,),
            )

    def waiting(self) -> list[tuple[str, int, float, float]]:
        """Per service with open tasks: (service, how many, oldest filed_at, first expires_at)."""
        with self._conn() as db:
            rows = self._run(
                db, "SELECT service, COUNT(*), MIN(filed_at), MIN(expires_at) FROM {t} "
                "WHERE state = 'open' AND expires_at > ? GROUP BY service", (self._clock(),),
            ).fetchall()
        return [(str(r[0]), int(r[1]), float(r[2]), float(r[3])) for r in rows]

    def unsent(self, *, stale_after_s: float = 60.0) -> list[Task]:
        """Answers stored but not known to be delivered: ``audited`` ones, and ``sending`` ones
        claimed more than ``stale_after_s`` ago (their process stopped before the audit entry
        was known to be written; younger ones are still being closed by their operator)."""
        cutoff = self._clock() - stale_after_s
        return [t for t in self.tasks(states=("sending", "audited"))
                if t.state == "audited" or (t.closed_at or 0.0) < cutoff]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._db is not None:
                self._db.close()
                self._db = None
