"""The operator inbox's contract, on a SQLite file and on the live PostgreSQL (shared by nodes)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bus.inbox.store import (
    DuplicateTask,
    InboxUnavailable,
    OperatorInbox,
    TaskClosed,
    Ticket,
)

PINFL = "42203902740025"
PG = "postgresql://postgres:secret-pw@127.0.0.1:5432/test"  # trust auth: the password is unused


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def ticket(task_id: str = "t-1", expires_at: float = 1_800_003_600.0) -> Ticket:
    return Ticket(id=task_id, service="state-archive/archival-birth-record/v1", client="portal",
                  purpose="pension-assignment", user="officer-3", subject=PINFL,
                  envelope=b'{"signed": "request"}', reply_to="reply.node-1.async",
                  expires_at=expires_at)


Opener = Callable[[Clock], OperatorInbox]


@contextlib.contextmanager
def pg_inbox() -> Iterator[str]:
    """An inbox URL of the live PostgreSQL, in a schema of its own (dropped afterwards)."""
    import psycopg

    schema = f"inbox_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG, autocommit=True) as db:
            db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where an inbox is: a file, or the live PostgreSQL."""
    if request.param == "sqlite":
        yield str(tmp_path / "inbox.db")
    else:
        with pg_inbox() as url:
            yield url


@pytest.fixture
def open_inbox(where: str) -> Iterator[Opener]:
    opened: list[OperatorInbox] = []

    def open_one(clock: Clock) -> OperatorInbox:
        opened.append(OperatorInbox(where, clock=clock))
        return opened[-1]

    yield open_one
    for box in opened:
        box.close()


@pytest.fixture
def inbox(open_inbox: Opener) -> OperatorInbox:
    return open_inbox(Clock())


def test_a_request_delivered_twice_is_one_task(inbox: OperatorInbox) -> None:
    assert inbox.file(ticket(), {"pinfl": PINFL}) is True
    assert inbox.file(ticket(), {"pinfl": PINFL}) is False
    (task,) = inbox.tasks()
    assert (task.id, task.state, task.request, task.reply_to, task.envelope, task.user) == (
        "t-1", "open", {"pinfl": PINFL}, "reply.node-1.async", b'{"signed": "request"}',
        "officer-3")


def test_a_task_is_closed_once(inbox: OperatorInbox) -> None:
    inbox.file(ticket(), {"pinfl": PINFL})
    inbox.close_task("t-1", operator="a.karimova", outcome="ok", answer=b"signed answer")
    assert inbox.tasks() == [] and inbox.unsent() == []  # being closed: its audit entry next
    inbox.audited("t-1")
    assert [t.id for t in inbox.unsent()] == ["t-1"]
    with pytest.raises(TaskClosed, match="being delivered"):
        inbox.close_task("t-1", operator="b.aliyev", outcome="no-data", answer=b"other")
    inbox.sent("t-1")
    task = inbox.get("t-1")
    assert task is not None and (task.state, task.operator, task.answer) == (
        "answered", "a.karimova", b"signed answer")
    with pytest.raises(TaskClosed, match="answered"):
        inbox.close_task("t-1", operator="a.karimova", outcome="ok", answer=b"again")
    with pytest.raises(TaskClosed, match="no task"):
        inbox.close_task("nope", operator="a.karimova", outcome="ok", answer=b"x")


def test_what_is_sent_again_audited_ones_and_claims_left_behind(open_inbox: Opener) -> None:
    clock = Clock()
    inbox = open_inbox(clock)
    for task_id in ("audited", "being-closed", "left-behind"):
        inbox.file(ticket(task_id), {"pinfl": PINFL})
    inbox.close_task("left-behind", operator="op", outcome="ok", answer=b"a")
    clock.now += 120  # its process stopped two minutes ago, before the audit entry
    inbox.close_task("audited", operator="op", outcome="ok", answer=b"b")
    inbox.audited("audited")
    inbox.close_task("being-closed", operator="op", outcome="ok", answer=b"c")  # just now
    assert sorted(t.id for t in inbox.unsent()) == ["audited", "left-behind"]
    inbox.sent("audited")
    assert [t.id for t in inbox.unsent()] == ["left-behind"]


def test_a_rejection_and_an_undone_claim(inbox: OperatorInbox) -> None:
    inbox.file(ticket("t-1"), {"pinfl": PINFL})
    inbox.file(ticket("t-2"), {"pinfl": PINFL})
    inbox.close_task("t-1", operator="op", outcome="no-data", answer=b"error")
    inbox.sent("t-1")
    inbox.close_task("t-2", operator="op", outcome="ok", answer=b"answer")
    inbox.reopen("t-2")  # the audit entry could not be written: open again, nothing kept
    states = {t.id: (t.state, t.answer) for t in inbox.tasks(states=("open", "rejected"))}
    assert states == {"t-1": ("rejected", b"error"), "t-2": ("open", None)}


def test_a_task_nobody_waits_for_any_more_expires(open_inbox: Opener) -> None:
    clock = Clock()
    inbox = open_inbox(clock)
    inbox.file(ticket(expires_at=clock.now + 60), {"pinfl": PINFL})
    assert inbox.waiting() == [("state-archive/archival-birth-record/v1", 1, clock.now,
                                clock.now + 60)]
    clock.now += 61
    assert inbox.tasks() == [] and inbox.waiting() == []
    with pytest.raises(TaskClosed, match="expired"):
        inbox.close_task("t-1", operator="op", outcome="ok", answer=b"late")
    assert [t.state for t in inbox.tasks(states=("expired",))] == ["expired"]


def test_two_nodes_on_one_inbox_see_every_task_and_answer_each_once(open_inbox: Opener) -> None:
    clock = Clock()
    node_a, node_b = open_inbox(clock), open_inbox(clock)
    node_a.file(ticket("t-a"), {"pinfl": PINFL})
    node_b.file(ticket("t-b"), {"pinfl": PINFL})
    node_b.file(ticket("t-a"), {"pinfl": PINFL})  # redelivered to the other node: one task
    assert [t.id for t in node_a.tasks()] == [t.id for t in node_b.tasks()] == ["t-a", "t-b"]
    node_b.close_task("t-a", operator="on-b", outcome="ok", answer=b"from b")
    with pytest.raises(TaskClosed, match="being answered"):
        node_a.close_task("t-a", operator="on-a", outcome="ok", answer=b"from a")


@pytest.mark.postgres
def test_an_inbox_whose_database_is_away_opens_when_it_is_back() -> None:
    with pg_inbox() as where:
        away = where.replace("127.0.0.1:5432", "127.0.0.1:9")
        inbox = OperatorInbox(away, clock=Clock())  # the node still starts
        with pytest.raises(InboxUnavailable):
            inbox.file(ticket(), {"pinfl": PINFL})
        inbox.location = where  # as if the server came back
        assert inbox.file(ticket(), {"pinfl": PINFL}) is True
        inbox.close()


def test_an_inbox_file_that_cannot_be_opened_is_an_error_at_once(tmp_path: Path) -> None:
    (tmp_path / "inbox.db").write_bytes(b"not a database" * 100)
    with pytest.raises(InboxUnavailable, match=r"inbox\.db"):
        OperatorInbox(tmp_path / "inbox.db")


@pytest.mark.postgres
def test_a_dropped_database_connection_fails_one_call_then_reconnects() -> None:
    import psycopg

    with pg_inbox() as where, contextlib.closing(OperatorInbox(where, clock=Clock())) as inbox:
        inbox.file(ticket("t-1"), {"pinfl": PINFL})
        with psycopg.connect(PG, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (inbox._db.info.backend_pid,))
        with pytest.raises(InboxUnavailable) as caught:
            inbox.tasks()
        assert "secret-pw" not in str(caught.value)  # the URL's password is never shown
        assert [t.id for t in inbox.tasks()] == ["t-1"]  # opened again


def test_an_application_is_filed_once_by_its_key(open_inbox: Opener) -> None:
    clock = Clock()
    inbox = open_inbox(clock)
    assert inbox.file(ticket("t-1", expires_at=clock.now + 60), {"pinfl": PINFL}, key="app-1")
    assert inbox.file(ticket("t-1", expires_at=clock.now + 60), {"pinfl": PINFL},
                      key="app-1") is False  # the same request delivered again
    with pytest.raises(DuplicateTask) as info:  # a retry: another request, the same application
        inbox.file(ticket("t-2"), {"pinfl": PINFL}, key="app-1")
    assert info.value.task_id == "t-1"
    assert inbox.file(ticket("t-3"), {"pinfl": PINFL}, key="app-2")  # another application
    assert inbox.file(ticket("t-4"), {"pinfl": PINFL})  # and requests without a key
    assert inbox.file(ticket("t-5"), {"pinfl": PINFL})
    assert sorted(t.id for t in inbox.tasks()) == ["t-1", "t-3", "t-4", "t-5"]
    clock.now += 120  # t-1 expired unanswered: the application may be filed anew
    assert inbox.file(ticket("t-6"), {"pinfl": PINFL}, key="app-1")
    assert "t-6" in {t.id for t in inbox.tasks()}


def test_an_inbox_made_before_keys_gets_them_when_opened(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "inbox.db"
    with contextlib.closing(sqlite3.connect(path)) as db, db:  # the schema of earlier versions
        db.executescript(
            "CREATE TABLE tasks (id TEXT PRIMARY KEY, service TEXT NOT NULL, client TEXT NOT "
            "NULL, purpose TEXT NOT NULL, \"user\" TEXT NOT NULL, subject TEXT, request TEXT NOT "
            "NULL, envelope BLOB NOT NULL, reply_to TEXT NOT NULL, expires_at REAL NOT NULL, "
            "state TEXT NOT NULL, outcome TEXT, answer BLOB, operator TEXT, filed_at REAL NOT "
            "NULL, closed_at REAL)")
    inbox = OperatorInbox(path, clock=Clock())
    try:
        assert inbox.file(ticket("t-1"), {"pinfl": PINFL}, key="app-1")
        with pytest.raises(DuplicateTask):
            inbox.file(ticket("t-2"), {"pinfl": PINFL}, key="app-1")
    finally:
        inbox.close()
