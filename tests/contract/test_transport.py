"""The behaviour every ``Transport`` promises (see ``bus/transport/base.py``), for each of them."""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from bus.core.errors import ProviderRejected, ProviderUnavailable
from bus.transport import (
    DeadLetter,
    Delivery,
    Message,
    QueueStats,
    Transport,
    TransportClosed,
    is_reply_queue,
    reply_queue,
)
from tests.contract.conftest import Inbox, TransportOpener, eventually, message


def _dead_letters_of(transport: Transport, queue: str) -> list[DeadLetter]:
    return [d for d in transport.dead_letters(limit=1000) if d.queue == queue]


def _nothing(delivery: Delivery) -> None:
    """Leave the message unsettled, as a consumer that dies mid-work would."""


def test_is_a_transport(transport: Transport) -> None:
    assert isinstance(transport, Transport)


def test_publish_then_consume_delivers_the_message_intact(transport: Transport, queue: str) -> None:
    transport.declare(queue)
    sent = Message(
        body=bytes(range(256)) * 4,
        message_id=str(uuid.uuid4()),
        correlation_id=str(uuid.uuid4()),
        reply_to="reply.elsewhere",
        expires_at=time.time() + 60,
        headers={"service": "civil-registry/birth-certificate/v1", "x-note": "ünïcödé"},
    )
    transport.publish(queue, sent)
    inbox = Inbox()
    sub = transport.consume(queue, inbox)
    [got] = inbox.wait_for(1)
    sub.cancel()
    assert got.queue == queue
    assert got.message.body == sent.body
    assert got.message.message_id == sent.message_id
    assert got.message.correlation_id == sent.correlation_id
    assert got.message.reply_to == sent.reply_to
    assert got.message.expires_at == pytest.approx(sent.expires_at, abs=1e-3)
    assert dict(got.message.headers) == dict(sent.headers)
    assert got.attempt == 1
    assert got.redelivered is False


def test_acked_message_is_gone_after_restart(
    transport_factory: TransportOpener, queue: str
) -> None:
    first = transport_factory()
    first.declare(queue)
    first.publish(queue, message())
    inbox = Inbox(lambda d: d.ack())
    sub = first.consume(queue, inbox)
    inbox.wait_for(1)
    sub.cancel()
    first.close()

    again = transport_factory()
    assert again.queue_depth(queue) == 0
    later = Inbox()
    again.consume(queue, later)
    assert later.count_after(0.3) == 0


def test_unacked_message_is_redelivered_after_restart(
    transport_factory: TransportOpener, queue: str
) -> None:
    first = transport_factory()
    first.declare(queue)
    sent = message()
    first.publish(queue, sent)
    inbox = Inbox(_nothing)
    first.consume(queue, inbox)
    [got] = inbox.wait_for(1)
    assert got.redelivered is False
    first.close()

    again = transport_factory()
    later = Inbox()
    again.consume(queue, later)
    [redelivered] = later.wait_for(1)
    assert redelivered.message.message_id == sent.message_id
    assert redelivered.message.body == sent.body
    assert redelivered.redelivered is True
    assert redelivered.attempt == 2


def test_each_queue_delivers_in_publish_order(transport: Transport, queue: str) -> None:
    other = queue + ".other"
    for q in (queue, other):
        transport.declare(q)
    sent: dict[str, list[str]] = {queue: [], other: []}
    for i in range(30):
        q = queue if i % 3 else other
        m = message(str(i).encode())
        sent[q].append(m.message_id)
        transport.publish(q, m)
    for q, ids in sent.items():
        inbox = Inbox()
        sub = transport.consume(q, inbox, prefetch=1)
        got = inbox.wait_for(len(ids))
        sub.cancel()
        assert [d.message.message_id for d in got] == ids


def test_retry_redelivers_after_the_delay_not_before(transport: Transport, queue: str) -> None:
    def settle(delivery: Delivery) -> None:
        if delivery.attempt == 1:
            delivery.retry(0.5, "try-later")
        else:
            delivery.ack()

    transport.declare(queue)
    sent = message()
    transport.publish(queue, sent)
    inbox = Inbox(settle)
    transport.consume(queue, inbox)
    inbox.wait_for(1)
    assert inbox.count_after(0.25) == 1
    first, second = inbox.wait_for(2)
    assert inbox.times[1] - inbox.times[0] >= 0.45
    assert second.message.message_id == sent.message_id
    assert second.attempt == first.attempt + 1
    assert inbox.count_after(0.2) == 2


def test_dead_letter_keeps_the_reason_and_can_be_replayed(transport: Transport, queue: str) -> None:
    def settle(delivery: Delivery) -> None:
        if len(inbox.deliveries) == 1:
            delivery.dead_letter("no-such-record")
        else:
            delivery.ack()

    transport.declare(queue)
    sent = message(b"\x00body\xff", headers={"k": "v"})
    transport.publish(queue, sent)
    inbox = Inbox(settle)
    transport.consume(queue, inbox)
    inbox.wait_for(1)
    eventually(lambda: len(_dead_letters_of(transport, queue)) == 1)
    [dead] = _dead_letters_of(transport, queue)
    assert dead.reason == "no-such-record"
    assert dead.message.message_id == sent.message_id
    assert dead.message.body == sent.body
    assert dict(dead.message.headers) == {"k": "v"}
    assert dead.attempts == 1
    assert dead.failed_at == pytest.approx(time.time(), abs=5)
    assert transport.queue_depth(queue) == 0

    replayed = transport.replay(dead.id)
    assert replayed.message_id == sent.message_id
    _, again = inbox.wait_for(2)
    assert again.message.message_id == sent.message_id
    assert again.message.body == sent.body
    assert _dead_letters_of(transport, queue) == []


def test_dead_letters_can_be_purged_one_or_all(transport: Transport, queue: str) -> None:
    transport.declare(queue)
    for _ in range(3):
        transport.publish(queue, message())
    transport.consume(queue, Inbox(lambda d: d.dead_letter("rejected")))
    eventually(lambda: len(_dead_letters_of(transport, queue)) == 3)
    first, *rest = _dead_letters_of(transport, queue)
    assert transport.purge_dead_letters(first.id) == 1
    assert transport.purge_dead_letters(first.id) == 0
    assert [d.id for d in _dead_letters_of(transport, queue)] == [d.id for d in rest]
    assert transport.purge_dead_letters() >= 2
    assert _dead_letters_of(transport, queue) == []


def test_replaying_an_unknown_dead_letter_raises_key_error(transport: Transport) -> None:
    with pytest.raises(KeyError):
        transport.replay("no-such-dead-letter")


def test_expired_message_is_dead_lettered_not_delivered(transport: Transport, queue: str) -> None:
    transport.declare(queue)
    stale = message(expires_at=time.time() - 1)
    short = message(expires_at=time.time() + 0.2)
    fresh = message(expires_at=time.time() + 60)
    for m in (stale, short, fresh):
        transport.publish(queue, m)
    time.sleep(0.4)
    inbox = Inbox()
    transport.consume(queue, inbox)
    [got] = inbox.wait_for(1)
    assert got.message.message_id == fresh.message_id
    assert inbox.count_after(0.2) == 1
    eventually(lambda: len(_dead_letters_of(transport, queue)) == 2)
    dead = _dead_letters_of(transport, queue)
    assert {d.message.message_id for d in dead} == {stale.message_id, short.message_id}
    assert {d.reason for d in dead} == {"expired"}


def test_expired_reply_is_dropped_expired_request_dead_lettered(
    transport: Transport, queue: str
) -> None:
    """On a reply queue an expired message is dropped, not dead-lettered (nobody waits for it,
    replaying it would answer no one); on a request queue it is still dead-lettered."""
    replies = f"reply.{queue}"  # as the node's reply.<node> and reply.<node>.async
    assert is_reply_queue(replies) and not is_reply_queue(queue)
    sent: dict[str, list[Message]] = {}
    for q in (queue, replies):
        transport.declare(q)
        sent[q] = [
            message(expires_at=time.time() - 1),  # expired before it was sent
            message(expires_at=time.time() + 0.2),  # expires while it waits
            message(expires_at=time.time() + 60),
        ]
        for m in sent[q]:
            transport.publish(q, m)
    time.sleep(0.4)
    for q in (queue, replies):
        inbox = Inbox()
        sub = transport.consume(q, inbox, prefetch=1)
        [got] = inbox.wait_for(1)  # the expired ones before it are settled by now
        assert got.message.message_id == sent[q][-1].message_id
        assert inbox.count_after(0.2) == 1
        sub.cancel()
    eventually(lambda: len(_dead_letters_of(transport, queue)) == 2)
    dead = _dead_letters_of(transport, queue)
    assert {d.message.message_id for d in dead} == {m.message_id for m in sent[queue][:2]}
    assert {d.reason for d in dead} == {"expired"}
    assert _dead_letters_of(transport, replies) == []
    assert transport.queue_depth(replies) == 0


def test_reply_after_its_request_expired_is_dropped(
    transport_factory: TransportOpener, queue: str
) -> None:
    server = transport_factory("server")
    client = transport_factory("client")
    server.declare(queue)
    replied = threading.Event()

    def late(delivery: Delivery) -> None:
        with delivery.process():
            request = delivery.message
            assert request.expires_at is not None
            time.sleep(max(0.0, request.expires_at - time.time()) + 0.1)
            server.reply(request, message(b"too late", expires_at=request.expires_at))
            replied.set()

    server.consume(queue, late, prefetch=1)
    asked = client.request(queue, message(expires_at=time.time() + 0.3))
    assert replied.wait(3)
    eventually(lambda: client.queue_depth(reply_queue(client.node)) == 0)
    time.sleep(0.3)  # a dead letter would have been published by now
    assert _dead_letters_of(client, reply_queue(client.node)) == []
    assert not asked.done() or asked.exception() is not None
    asked.cancel()


def test_requests_get_their_own_replies(transport_factory: TransportOpener, queue: str) -> None:
    server = transport_factory("server")
    client = transport_factory("client")
    server.declare(queue)

    def answer(delivery: Delivery) -> None:
        with delivery.process():
            time.sleep(random.uniform(0, 0.02))  # answers come back out of order
            server.reply(delivery.message, message(b"re:" + delivery.message.body))

    server.consume(queue, answer, prefetch=4)
    requests = [message(f"question {i}".encode()) for i in range(12)]
    with ThreadPoolExecutor(4) as pool:
        futures = list(pool.map(lambda m: client.request(queue, m), requests))
    for request, future in zip(requests, futures, strict=True):
        reply = future.result(timeout=5)
        assert reply.correlation_id == request.message_id
        assert reply.body == b"re:" + request.body


def test_reply_nobody_waits_for_is_dropped(transport_factory: TransportOpener, queue: str) -> None:
    server = transport_factory("server")
    client = transport_factory("client")
    server.declare(queue)
    go = threading.Event()

    def answer(delivery: Delivery) -> None:
        with delivery.process():
            go.wait(2)
            server.reply(delivery.message, message(b"late"))

    server.consume(queue, answer, prefetch=1)
    abandoned = client.request(queue, message(b"first"))
    assert abandoned.cancel()
    go.set()
    answered = client.request(queue, message(b"second"))
    assert answered.result(timeout=5).body == b"late"
    eventually(lambda: client.queue_depth(reply_queue(client.node)) == 0)


def test_process_acks_on_success(transport_factory: TransportOpener, queue: str) -> None:
    first = transport_factory()
    first.declare(queue)
    first.publish(queue, message())
    inbox = Inbox()
    sub = first.consume(queue, inbox)
    inbox.wait_for(1)
    sub.cancel()
    first.close()
    again = transport_factory()
    assert again.queue_depth(queue) == 0
    later = Inbox(_nothing)
    again.consume(queue, later)
    assert later.count_after(0.3) == 0
    assert _dead_letters_of(again, queue) == []


def test_process_dead_letters_a_permanent_error_with_its_code(
    transport: Transport, queue: str
) -> None:
    def settle(delivery: Delivery) -> None:
        with delivery.process(max_attempts=3, retry_delay_s=0.05):
            raise ProviderRejected("the registry refused")

    transport.declare(queue)
    sent = message()
    transport.publish(queue, sent)
    inbox = Inbox(settle)
    transport.consume(queue, inbox)
    inbox.wait_for(1)
    eventually(lambda: len(_dead_letters_of(transport, queue)) == 1)
    [dead] = _dead_letters_of(transport, queue)
    assert dead.reason == "provider-rejected"
    assert dead.message.message_id == sent.message_id
    assert inbox.count_after(0.2) == 1


def test_process_retries_a_transient_error(transport: Transport, queue: str) -> None:
    def settle(delivery: Delivery) -> None:
        with delivery.process(max_attempts=3, retry_delay_s=0.05):
            if delivery.attempt == 1:
                raise ProviderUnavailable("registry down")

    transport.declare(queue)
    transport.publish(queue, message())
    inbox = Inbox(settle)
    transport.consume(queue, inbox)
    first, second = inbox.wait_for(2)
    assert (first.attempt, second.attempt) == (1, 2)
    assert inbox.count_after(0.2) == 2
    assert _dead_letters_of(transport, queue) == []
    assert transport.queue_depth(queue) == 0


def test_process_dead_letters_a_transient_error_after_the_last_attempt(
    transport: Transport, queue: str
) -> None:
    def settle(delivery: Delivery) -> None:
        with delivery.process(max_attempts=2, retry_delay_s=0.05):
            raise ProviderUnavailable("registry down")

    transport.declare(queue)
    transport.publish(queue, message())
    inbox = Inbox(settle)
    transport.consume(queue, inbox)
    inbox.wait_for(2)
    eventually(lambda: len(_dead_letters_of(transport, queue)) == 1)
    [dead] = _dead_letters_of(transport, queue)
    assert dead.reason == "provider-unavailable"
    assert dead.attempts == 2
    assert inbox.count_after(0.1) == 2


def test_queue_depth_counts_waiting_messages(transport: Transport, queue: str) -> None:
    transport.declare(queue)
    assert transport.queue_depth(queue) == 0
    for _ in range(3):
        transport.publish(queue, message())
    assert transport.queue_depth(queue) == 3
    inbox = Inbox()
    transport.consume(queue, inbox)
    inbox.wait_for(3)
    eventually(lambda: transport.queue_depth(queue) == 0)


def test_consume_handles_up_to_prefetch_messages_at_once(transport: Transport, queue: str) -> None:
    together = threading.Barrier(4, timeout=2)
    transport.declare(queue)
    for _ in range(4):
        transport.publish(queue, message())

    def settle(delivery: Delivery) -> None:
        with delivery.process():
            together.wait()

    inbox = Inbox(settle)
    transport.consume(queue, inbox, prefetch=4)
    inbox.wait_for(4)
    eventually(lambda: transport.queue_depth(queue) == 0)
    assert not together.broken


def test_cancelled_subscription_gets_no_more_messages(transport: Transport, queue: str) -> None:
    transport.declare(queue)
    inbox = Inbox()
    sub = transport.consume(queue, inbox)
    transport.publish(queue, message())
    inbox.wait_for(1)
    sub.cancel()
    transport.publish(queue, message())
    assert inbox.count_after(0.2) == 1
    assert transport.queue_depth(queue) == 1


def test_closed_transport_refuses_work(transport: Transport, queue: str) -> None:
    transport.declare(queue)
    transport.close()
    transport.close()  # idempotent
    with pytest.raises(TransportClosed):
        transport.publish(queue, message())
    with pytest.raises(TransportClosed):
        transport.consume(queue, Inbox())
    with pytest.raises(TransportClosed):
        transport.request(queue, message())


def test_is_connected_while_open_not_after_close(transport: Transport, queue: str) -> None:
    transport.declare(queue)
    sub = transport.consume(queue, Inbox())
    eventually(transport.is_connected, timeout=5)
    sub.cancel()
    assert transport.is_connected()
    transport.close()
    assert not transport.is_connected()


def test_stats_count_depth_consumers_retrying_and_dead_letters(
    transport: Transport, queue: str
) -> None:
    transport.declare(queue)
    for _ in range(3):
        transport.publish(queue, message())
    eventually(lambda: transport.stats([queue]).queues[queue] == QueueStats(3, 0))
    before = transport.stats([queue])

    def settle(delivery: Delivery) -> None:
        if delivery.message.body == b"later":
            delivery.retry(5.0, "later")
        elif delivery.message.body == b"bad":
            delivery.dead_letter("bad")
        else:
            delivery.ack()

    inbox = Inbox(settle)
    sub = transport.consume(queue, inbox)
    inbox.wait_for(3)
    transport.publish(queue, message(b"later"))
    transport.publish(queue, message(b"bad"))
    inbox.wait_for(5)

    def settled() -> bool:
        stats = transport.stats([queue])
        return (
            stats.queues[queue].depth == 0
            and stats.queues[queue].consumers == 1
            and stats.retrying >= before.retrying + 1
            and stats.dead_letters >= before.dead_letters + 1
        )

    eventually(settled, timeout=5)
    sub.cancel()
    eventually(lambda: transport.stats([queue]).queues[queue].consumers == 0, timeout=5)
