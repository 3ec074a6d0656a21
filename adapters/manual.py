"""Adapter kind ``manual``: the operator fallback route, for an agency with no database or API.

Talks to: a person. Each request is filed in the agency's operator inbox (``OperatorInbox``, a
SQLite file, mode 0600: the requests name citizens) instead of being answered at once; an
official of the agency looks it up (in a paper archive, say) and answers it with
``run_bus.py inbox answer`` or the node's ``/inbox`` page (``bus.inbox``), which validate the
answer against the service's shared response schema, sign it with the agency's key and deliver
it. A service on this kind is asynchronous: give it a ``timeout_s`` of days and ask it with
``?mode=async`` (``bus.gateway_async``).

Options:

``inbox`` (path, optional)
    The inbox file. Default: ``inbox.db`` in the node's data folder (beside ``documents.db``).
    Every manual service of a node may share one file; tasks carry their service.
``instructions`` (str, default ``""``)
    What the operator is shown with each task of this service (where to look, what to fill in).

Error mapping: nothing is called, so there is no provider error. A task filed twice (the same
request delivered again) is kept once. A task is answered or rejected once: a second attempt,
or one after the request expired, raises ``TaskClosed``. Filing that cannot be written raises
``ProviderUnavailable`` (transient: the request is delivered again).

States of a task: ``open`` → ``sending`` (claimed: the signed answer stored) → ``audited`` (its
audit entry written: free to deliver) → ``answered`` or ``rejected`` (delivered); ``open`` →
``expired`` once the asker's deadline passed.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import orjson
from pydantic import Field

from adapters.base import AdapterContext, AdapterOptions, Deadline, ProviderUnavailable
from adapters.local_db import open_local_db
from schemas import SharedRequest, SharedResponse

__all__ = [
    "DeferringAdapter",
    "ManualAdapter",
    "ManualOptions",
    "OperatorInbox",
    "Task",
    "TaskClosed",
    "Ticket",
    "inbox_path",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    client TEXT NOT NULL,
    purpose TEXT NOT NULL,
    user TEXT NOT NULL,
    subject TEXT,
    request TEXT NOT NULL,
    envelope BLOB NOT NULL,
    reply_to TEXT NOT NULL,
    expires_at REAL NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('open', 'sending', 'audited', 'answered', 'rejected', 'expired')),
    outcome TEXT,
    answer BLOB,
    operator TEXT,
    filed_at REAL NOT NULL,
    closed_at REAL
);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state, filed_at);
"""
_COLUMNS = (
    "id, service, client, purpose, user, subject, request, envelope, reply_to, expires_at, "
    "state, outcome, answer, operator, filed_at, closed_at"
)


_SAID = {"sending": "being answered", "audited": "answered (being delivered)"}


class TaskClosed(Exception):
    """The task is not open (answered, rejected or expired already), or does not exist."""


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
    return Task(*values)  # type: ignore[arg-type]


class OperatorInbox:
    """The tasks of one inbox file; safe across threads and processes (the node and the CLI)."""

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = open_local_db(self.path)
        self._db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                raise RuntimeError(f"inbox {self.path} is closed")
            yield self._db

    def file(self, ticket: Ticket, request: dict[str, object]) -> bool:
        """Keep the task; False if it was filed before (the same request delivered again)."""
        with self._conn() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO tasks (id, service, client, purpose, user, subject, "
                "request, envelope, reply_to, expires_at, state, filed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)",
                (ticket.id, ticket.service, ticket.client, ticket.purpose, ticket.user,
                 ticket.subject, orjson.dumps(request).decode(), ticket.envelope,
                 ticket.reply_to, ticket.expires_at, self._clock()),
            )
        return cursor.rowcount == 1

    def get(self, task_id: str) -> Task | None:
        with self._conn() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None else _task(row)

    def tasks(self, *, states: tuple[str, ...] = ("open",), services: list[str] | None = None,
              limit: int = 200) -> list[Task]:
        """Tasks in ``states``, oldest first (of ``services`` if given)."""
        self.expire()
        query = f"SELECT {_COLUMNS} FROM tasks WHERE state IN ({','.join('?' * len(states))})"
        args: list[object] = list(states)
        if services is not None:
            query += f" AND service IN ({','.join('?' * len(services))})"
            args += services
        with self._conn() as db:
            rows = db.execute(query + " ORDER BY filed_at LIMIT ?", (*args, limit)).fetchall()
        return [_task(row) for row in rows]

    def expire(self) -> int:
        """Close the open tasks whose asker stopped waiting; how many."""
        with self._conn() as db:
            return db.execute(
                "UPDATE tasks SET state = 'expired', closed_at = ? "
                "WHERE state = 'open' AND expires_at <= ?",
                (self._clock(), self._clock()),
            ).rowcount

    def close_task(self, task_id: str, *, operator: str, outcome: str, answer: bytes) -> None:
        """Store the signed ``answer`` (state ``sending``); ``TaskClosed`` if not open now."""
        now = self._clock()
        with self._conn() as db:
            changed = db.execute(
                "UPDATE tasks SET state = 'sending', outcome = ?, answer = ?, operator = ?, "
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
            db.execute(
                "UPDATE tasks SET state = 'open', outcome = NULL, answer = NULL, operator = NULL,"
                " closed_at = NULL WHERE id = ? AND state = 'sending'",
                (task_id,),
            )

    def audited(self, task_id: str) -> None:
        """The answer's audit entry is durable: it may be delivered."""
        with self._conn() as db:
            db.execute(
                "UPDATE tasks SET state = 'audited' WHERE id = ? AND state = 'sending'", (task_id,)
            )

    def sent(self, task_id: str) -> None:
        """The answer was delivered to the transport: ``answered`` or ``rejected``."""
        with self._conn() as db:
            db.execute(
                "UPDATE tasks SET state = CASE WHEN outcome = 'ok' THEN 'answered' "
                "ELSE 'rejected' END WHERE id = ? AND state IN ('sending', 'audited')",
                (task_id,),
            )

    def waiting(self) -> list[tuple[str, int, float, float]]:
        """Per service with open tasks: (service, how many, oldest filed_at, first expires_at)."""
        with self._conn() as db:
            rows = db.execute(
                "SELECT service, COUNT(*), MIN(filed_at), MIN(expires_at) FROM tasks "
                "WHERE state = 'open' AND expires_at > ? GROUP BY service",
                (self._clock(),),
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
            if self._db is not None:
                self._db.close()
                self._db = None


class ManualOptions(AdapterOptions):
    inbox: Path | None = Field(
        default=None,
        description="the inbox file; default inbox.db in the node's data folder (shared by "
        "the node's manual services)",
    )
    instructions: str = Field(
        default="", max_length=2000, description="shown to the operator with each task"
    )


def inbox_path(options: ManualOptions, data_dir: Path | None) -> Path:
    """The inbox file of a manual service: its ``inbox`` option, else ``inbox.db`` in the
    node's data folder."""
    return options.inbox if options.inbox is not None else (data_dir or Path(".")) / "inbox.db"


@runtime_checkable
class DeferringAdapter(Protocol):
    """An adapter that answers later: ``file`` keeps the request; the answer comes another way."""

    def file(self, request: SharedRequest, ticket: Ticket) -> None: ...


class ManualAdapter:
    kind: ClassVar[str] = "manual"
    options_model: ClassVar[type[AdapterOptions]] = ManualOptions

    def __init__(self, options: ManualOptions, context: AdapterContext) -> None:
        self.options = options
        self.context = context
        self.inbox = OperatorInbox(inbox_path(options, context.data_dir))

    def file(self, request: SharedRequest, ticket: Ticket) -> None:
        try:
            self.inbox.file(ticket, request.model_dump(mode="json"))
        except sqlite3.Error as exc:
            raise ProviderUnavailable(f"the operator inbox cannot be written: {exc}") from exc

    def call(self, request: SharedRequest, deadline: Deadline) -> SharedResponse:
        raise ProviderUnavailable(
            f"{self.context.service} is answered by an operator: its requests are filed, "
            "not called"
        )

    def close(self) -> None:
        self.inbox.close()
