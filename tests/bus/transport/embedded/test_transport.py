"""What only the embedded (SQLite) transport promises: crashes, other processes, its own clock."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bus.core.errors import BusUnavailable, DeadlineExceeded
from bus.transport import Delivery, Message, Transport, TransportClosed, open_transport
from bus.transport.embedded.transport import EmbeddedTransport
from tests.contract.conftest import Inbox, eventually, message

REPO = Path(__file__).resolve().parents[4]

CHILD_CONSUMES = """
import sys, time
from bus.transport.embedded.transport import EmbeddedTransport
transport = EmbeddedTransport(sys.argv[1], node=sys.argv[3] if len(sys.argv) > 3 else "child")
transport.consume(sys.argv[2], lambda d: print("claimed", d.message.message_id, flush=True))
time.sleep(60)
"""

CHILD_PUBLISHES = """
import sys, time
from bus.transport import Message
from bus.transport.embedded.transport import EmbeddedTransport
transport = EmbeddedTransport(sys.argv[1], node="child")
transport.publish(sys.argv[2], Message(b"survives", message_id=sys.argv[3]))
print("published", flush=True)
time.sleep(60)
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "var" / "queues.db"


@pytest.fixture
def opened() -> Iterator[list[Transport]]:
    transports: list[Transport] = []
    yield transports
    for t in reversed(transports):
        t.close()


def _run_child_until(code: str, *args: str, expect: str) -> str:
    """Run ``code`` in a child process until it prints ``expect``, then SIGKILL it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        line = child.stdout.readline()
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert line.startswith(expect), f"child said {line!r}"
    return line


@pytest.mark.timeout(20)
def test_message_claimed_by_a_killed_process_is_redelivered(db: Path, opened: list) -> None:
    with EmbeddedTransport(db, node="parent") as before:
        sent = message(b"work")
        before.publish("svc.q", sent)

    line = _run_child_until(CHILD_CONSUMES, str(db), "svc.q", expect="claimed")
    assert line.split()[1] == sent.message_id

    after = EmbeddedTransport(db, node="parent")
    opened.append(after)
    inbox = Inbox()
    after.consume("svc.q", inbox)
    [got] = inbox.wait_for(1)
    assert got.message.message_id == sent.message_id
    assert got.message.body == b"work"
    assert got.redelivered
    assert got.attempt == 2


@pytest.mark.timeout(20)
@pytest.mark.timeout(20)
def test_a_killed_instance_s_messages_go_back_when_its_successor_opens_beside_others(
    db: Path, opened: list
) -> None:
    """A worker of a node killed while the other workers keep the file open: its replacement
    (the same instance name) hands back what it had in flight; nobody else's."""
    other = EmbeddedTransport(db, node="node.w1")
    opened.append(other)
    held = Inbox(lambda d: None)  # the other worker holds its own message in flight
    other.consume("svc.other", held)
    other.publish("svc.other", message(b"the other's"))
    held.wait_for(1)
    sent = message(b"work")
    other.publish("svc.q", sent)

    _run_child_until(CHILD_CONSUMES, str(db), "svc.q", "node.w0", expect="claimed")

    successor = EmbeddedTransport(db, node="node.w0")
    opened.append(successor)
    inbox = Inbox()
    successor.consume("svc.q", inbox)
    [got] = inbox.wait_for(1)
    assert (got.message.message_id, got.redelivered, got.attempt) == (sent.message_id, True, 2)
    assert successor.queue_depth("svc.other") == 0  # the live worker's stays in flight


def test_a_reply_from_another_process_rings_the_waiting_instance(db: Path, opened: list) -> None:
    """The reply consumer wakes on the doorbell, not at its next poll (an hour away here)."""
    asker = EmbeddedTransport(db, node="asker", poll_interval_s=3600)
    answerer = EmbeddedTransport(db, node="answerer", poll_interval_s=0.01)
    opened.extend([asker, answerer])

    def answer(delivery: Delivery) -> None:
        with delivery.process():
            answerer.reply(delivery.message, message(b"answer"))

    answerer.consume("svc.q", answer)
    future = asker.request("svc.q", message(b"question"))
    assert future.result(timeout=5).body == b"answer"


def test_published_message_survives_the_publisher_being_killed(db: Path, opened: list) -> None:
    mid = "0b6f4c1e-survivor"
    _run_child_until(CHILD_PUBLISHES, str(db), "svc.q", mid, expect="published")
    transport = EmbeddedTransport(db, node="parent")
    opened.append(transport)
    assert transport.queue_depth("svc.q") == 1
    inbox = Inbox()
    transport.consume("svc.q", inbox)
    [got] = inbox.wait_for(1)
    assert (got.message.message_id, got.message.body) == (mid, b"survives")


def test_second_instance_on_the_file_does_not_take_in_flight_messages(
    db: Path, opened: list
) -> None:
    node = EmbeddedTransport(db, node="node")
    opened.append(node)
    held = Inbox(lambda d: None)
    node.consume("svc.q", held)
    node.publish("svc.q", message())
    held.wait_for(1)

    cli = EmbeddedTransport(db, node="cli", poll_interval_s=0.01)  # e.g. `run_bus.py dlq replay`
    opened.append(cli)
    inbox = Inbox()
    cli.consume("svc.q", inbox)
    assert inbox.count_after(0.2) == 0
    node.close()  # hands the unsettled message back
    [got] = inbox.wait_for(1)
    assert got.redelivered


def test_messages_written_by_another_process_are_picked_up_by_polling(
    db: Path, opened: list
) -> None:
    consumer = EmbeddedTransport(db, node="node", poll_interval_s=0.01)
    publisher = EmbeddedTransport(db, node="cli")
    opened += [consumer, publisher]
    inbox = Inbox()
    consumer.consume("svc.q", inbox, prefetch=2)
    sent = [message() for _ in range(5)]
    for m in sent:
        publisher.publish("svc.q", m)
    got = inbox.wait_for(5)
    assert [d.message.message_id for d in got] == [m.message_id for m in sent]


def test_retry_delay_and_expiry_follow_the_injected_clock(db: Path, opened: list) -> None:
    clock = FakeClock()
    transport = EmbeddedTransport(db, node="n", clock=clock, poll_interval_s=0.01)
    opened.append(transport)
    inbox = Inbox(lambda d: d.retry(30, "later") if d.attempt == 1 else d.ack())
    transport.publish("svc.q", message(expires_at=clock.now + 60))
    transport.publish("svc.q", message(expires_at=clock.now + 10))
    transport.consume("svc.q", inbox, prefetch=1)
    inbox.wait_for(1)  # the first one, retried in 30 s; the second one is now also waiting
    inbox.wait_for(2)
    assert inbox.count_after(0.1) == 2
    clock.now += 31  # the first is due again, the second expired after its retry
    first, second, third = inbox.wait_for(3)
    assert third.message.message_id == first.message.message_id
    assert third.attempt == 2
    eventually(lambda: len(transport.dead_letters()) == 1)
    [dead] = transport.dead_letters()
    assert (dead.message.message_id, dead.reason) == (second.message.message_id, "expired")
    assert dead.failed_at == clock.now


def test_handler_failing_outside_process_does_not_stop_the_consumer(db: Path, opened: list) -> None:
    def settle(delivery: Delivery) -> None:
        if delivery.message.body == b"boom":
            raise RuntimeError("bug in handler")
        delivery.ack()

    transport = EmbeddedTransport(db, node="n")
    opened.append(transport)
    inbox = Inbox(settle)
    transport.consume("svc.q", inbox, prefetch=1)
    transport.publish("svc.q", message(b"boom"))
    transport.publish("svc.q", message(b"fine"))
    assert [d.message.body for d in inbox.wait_for(2)] == [b"boom", b"fine"]
    transport.close()
    again = EmbeddedTransport(db, node="n")
    opened.append(again)
    assert again.queue_depth("svc.q") == 1  # the failed one, handed back on close


def test_settling_twice_is_refused(db: Path, opened: list) -> None:
    transport = EmbeddedTransport(db, node="n")
    opened.append(transport)
    errors: list[Exception] = []

    def settle(delivery: Delivery) -> None:
        delivery.ack()
        try:
            delivery.dead_letter("again")
        except RuntimeError as exc:
            errors.append(exc)

    inbox = Inbox(settle)
    transport.consume("svc.q", inbox)
    transport.publish("svc.q", message())
    inbox.wait_for(1)
    eventually(lambda: len(errors) == 1)
    assert transport.dead_letters() == []


def test_abandoned_request_fails_once_it_expired(db: Path, opened: list) -> None:
    clock = FakeClock()
    transport = EmbeddedTransport(db, node="n", clock=clock)
    opened.append(transport)
    abandoned = transport.request("svc.nobody", message(expires_at=clock.now + 5))
    clock.now += 6
    pending = transport.request("svc.nobody", message())
    with pytest.raises(DeadlineExceeded):
        abandoned.result(timeout=1)
    transport.close()
    with pytest.raises(TransportClosed):
        pending.result(timeout=1)


def test_reply_to_a_request_of_the_same_instance_skips_the_queue(
    db: Path, opened: list
) -> None:
    clock = FakeClock()
    transport = EmbeddedTransport(db, node="n", clock=clock)
    opened.append(transport)
    published: list[str] = []
    publish = transport.publish

    def counted(queue: str, m: Message) -> None:
        published.append(queue)
        publish(queue, m)

    transport.publish = counted  # type: ignore[method-assign]
    answered = transport.request("svc.q", message(b"ask", expires_at=clock.now + 5))
    late = transport.request("svc.q", message(b"late", expires_at=clock.now + 5))
    inbox = Inbox()
    transport.consume("svc.q", inbox, prefetch=2)
    first, second = sorted(inbox.wait_for(2), key=lambda d: d.message.body)
    transport.reply(first.message, message(b"answer", expires_at=clock.now + 5))
    assert answered.result(timeout=1).body == b"answer"
    assert answered.result().correlation_id == first.message.message_id
    clock.now += 6  # the second reply comes too late: its request fails as expired
    transport.reply(second.message, message(b"too late", expires_at=clock.now - 1))
    with pytest.raises(DeadlineExceeded):
        late.result(timeout=1)
    transport.reply(message(b"nobody", reply_to="reply.n"), message(b"orphan"))  # no waiter
    assert published == ["reply.n"]  # replies: only the one nobody waits for (requests: outbox)
    eventually(lambda: transport.queue_depth("reply.n") == 0)
    assert transport.dead_letters() == []


def test_requests_are_never_written_in_the_asking_thread(db: Path, opened: list) -> None:
    """The event loop asks; SQLite is written by the consumer that takes the request (a queue
    this instance consumes) or by the outbox thread (any other), never by the asker."""
    transport = EmbeddedTransport(db, node="n")
    opened.append(transport)
    writers: list[str] = []
    original = transport._file._db

    @contextlib.contextmanager
    def traced(*, atomic: bool = False) -> Iterator[Any]:
        writers.append(threading.current_thread().name)
        with original(atomic=atomic) as db:
            yield db

    transport._file._db = traced  # type: ignore[method-assign]
    asker = threading.current_thread().name
    remote = transport.request("other.q", message(b"to another process's consumer"))
    eventually(lambda: transport.queue_depth("other.q") == 1)

    def answer(delivery: Delivery) -> None:
        with delivery.process():
            transport.reply(delivery.message, message(b"answer"))

    transport.consume("svc.q", answer)
    writers.clear()
    local = transport.request("svc.q", message(b"to this instance's consumer"))
    assert local.result(timeout=5).body == b"answer"
    assert writers and asker not in writers
    assert not remote.done()  # written, waiting for its consumer


def test_a_request_that_cannot_be_written_fails_its_future(db: Path) -> None:
    transport = EmbeddedTransport(db, node="n")
    transport._file._conn.close()  # type: ignore[union-attr]  # the file is gone from under it
    future = transport.request("other.q", message(b"lost"))
    with pytest.raises(BusUnavailable):
        future.result(timeout=5)
    transport._file._conn = None
    transport.close()


def test_a_reply_is_written_with_the_settling_of_its_request(db: Path, opened: list) -> None:
    """Replies to another instance's queue: written in the ack's (or dead letter's)
    transaction, and by the time the handler returns even when it settles nothing."""
    transport = EmbeddedTransport(db, node="provider")
    opened.append(transport)
    seen_before_settling: list[int] = []

    def handle(delivery: Delivery) -> None:
        body = delivery.message.body
        transport.reply(delivery.message, message(b"re " + body))
        seen_before_settling.append(transport.queue_depth("reply.asker"))
        if body == b"fails":
            raise RuntimeError("after replying")  # dead-lettered by process()
        if body != b"left":
            delivery.ack()

    def settled(delivery: Delivery) -> None:
        if delivery.message.body == b"left":
            handle(delivery)  # leaves it in flight
            return
        with delivery.process():
            handle(delivery)

    transport.consume("svc.q", settled, prefetch=1)
    for body in (b"fine", b"fails", b"left"):
        transport.publish("svc.q", message(body, reply_to="reply.asker"))
    eventually(lambda: transport.queue_depth("reply.asker") == 3)
    assert seen_before_settling == [0, 1, 2]  # not written before its settling
    assert [d.message.body for d in transport.dead_letters()] == [b"fails"]
    assert transport.queue_depth("svc.q") == 0


def test_close_from_inside_a_handler_does_not_hang(db: Path) -> None:
    transport = EmbeddedTransport(db, node="n")
    closed = threading.Event()

    def settle(delivery: Delivery) -> None:
        transport.close()
        closed.set()

    transport.consume("svc.q", settle)
    transport.publish("svc.q", message())
    assert closed.wait(2)
    with pytest.raises(TransportClosed):
        transport.queue_depth("svc.q")
    again = EmbeddedTransport(db, node="n")
    try:
        assert again.queue_depth("svc.q") == 1  # never settled: handed back
    finally:
        again.close()


def test_sqlite_errors_become_bus_unavailable(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db"
    bad.write_bytes(b"this is not an SQLite file at all" * 100)
    with pytest.raises(BusUnavailable) as info:
        EmbeddedTransport(bad, node="n")
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_unknown_durability_is_refused(db: Path) -> None:
    with pytest.raises(ValueError, match="durable_sync"):
        EmbeddedTransport(db, node="n", durable_sync="sometimes")


def test_open_transport_opens_the_embedded_one(db: Path) -> None:
    transport = open_transport(f"embedded://{db}", node="n", durable_sync="full")
    try:
        assert isinstance(transport, EmbeddedTransport)
        transport.publish("svc.q", message())
        assert transport.queue_depth("svc.q") == 1
    finally:
        transport.close()
