"""What only the RabbitMQ transport promises: its topology, confirms, consuming and
reconnection, requests and closing (its retry queues and dead letters: ``test_retries.py``).

The behaviour both transports share is in ``tests/contract``. These tests look at the broker
itself, through a separate plain pika connection and ``rabbitmqctl`` (``broker.py``). Each test
uses its own node and queue names and deletes its queues afterwards.
"""

from __future__ import annotations

import gc
import threading
import time
import uuid
import weakref
from collections.abc import Callable

import pika
import pika.exceptions
import pytest

from bus.core.errors import BusUnavailable, DeadlineExceeded
from bus.transport import Delivery, Message, Transport, TransportClosed
from bus.transport.rabbitmq.topology import (
    DLQ,
    DLX,
    REQUESTS_EXCHANGE,
    RETRY_EXCHANGE,
)
from bus.transport.rabbitmq.transport import RabbitTransport, Unroutable
from tests.bus.transport.rabbitmq.broker import Broker, close_connections, queue_info
from tests.contract.conftest import Inbox, eventually, message

pytestmark = pytest.mark.rabbitmq


# -- topology -------------------------------------------------------------------------------------


def test_topology_is_declared_idempotently(
    open_transport: Callable[..., RabbitTransport], broker: Broker, node: str, queue: str
) -> None:
    first, second = open_transport(), open_transport()  # start-up twice: same declarations
    first.declare(queue)
    second.declare(queue)
    first.declare(queue)
    for exchange in (REQUESTS_EXCHANGE, RETRY_EXCHANGE, DLX):
        broker.fresh().exchange_declare(exchange, passive=True)
    assert broker.exists(DLQ)
    info = queue_info(queue)
    assert info["type"] == "quorum"
    assert info["arguments"] == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DLX,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    reply = queue_info(f"reply.{node}")
    assert reply["type"] == "quorum"
    assert reply["arguments"]["x-expires"] == 3_600_000
    assert queue_info(DLQ)["type"] == "quorum"


def test_a_queue_declared_differently_is_refused_as_bus_unavailable(
    transport: RabbitTransport, broker: Broker, queue: str
) -> None:
    broker.fresh().queue_declare(queue, durable=True)  # a classic queue of the same name
    with pytest.raises(BusUnavailable) as refused:
        transport.declare(queue)
    assert isinstance(refused.value.__cause__, pika.exceptions.ChannelClosedByBroker)
    other = queue + ".ok"
    broker.queues.append(other)
    transport.declare(other)  # the admin channel recovered
    assert transport.queue_depth(other) == 0


def test_unreachable_broker_is_bus_unavailable() -> None:
    started = time.monotonic()
    with pytest.raises(BusUnavailable) as refused:
        RabbitTransport("amqp://guest:guest@127.0.0.1:1/%2F", node="nowhere", connect_timeout_s=0.5)
    assert isinstance(refused.value.__cause__, pika.exceptions.AMQPConnectionError | OSError)
    assert time.monotonic() - started < 5


# -- publishing -----------------------------------------------------------------------------------


def test_publish_returns_once_the_broker_holds_the_message(
    transport: RabbitTransport, broker: Broker, queue: str
) -> None:
    transport.declare(queue)
    sent = [message(str(i).encode(), expires_at=time.time() + 60) for i in range(20)]
    for m in sent:
        transport.publish(queue, m)
    for m in sent:
        got = broker.get(queue)
        assert got is not None
        properties, body = got
        assert (properties.message_id, body) == (m.message_id, m.body)
        assert properties.delivery_mode == 2  # persistent
        assert 0 < int(properties.expiration) <= 60_000  # per-message TTL
    assert broker.get(queue) is None


def test_concurrent_publishes_are_all_confirmed(
    transport: RabbitTransport, broker: Broker, queue: str
) -> None:
    transport.declare(queue)
    ids = [str(i) for i in range(400)]

    def publish(chunk: list[str]) -> None:
        for i in chunk:
            transport.publish(queue, Message(body=b"x", message_id=i))

    threads = [threading.Thread(target=publish, args=(ids[k::8],)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = set()
    while (item := broker.get(queue)) is not None:
        got.add(item[0].message_id)
    assert got == set(ids)


def test_publish_to_a_queue_nobody_declared_fails(transport: RabbitTransport) -> None:
    with pytest.raises(Unroutable):
        transport.publish(f"test.nowhere.{uuid.uuid4().hex}", message())
    assert isinstance(Unroutable("x"), BusUnavailable)


# -- consuming ------------------------------------------------------------------------------------


def test_prefetch_bounds_the_unacked_messages(transport: RabbitTransport, queue: str) -> None:
    transport.declare(queue)
    for _ in range(6):
        transport.publish(queue, message())
    inbox = Inbox(lambda d: None)  # settled later, from this thread
    transport.consume(queue, inbox, prefetch=2)
    inbox.wait_for(2)
    assert inbox.count_after(0.3) == 2
    assert transport.queue_depth(queue) == 4
    settled = 0
    while settled < 6:
        inbox.wait_for(settled + 1)
        inbox.deliveries[settled].ack()  # an ack from another thread than the consumer's
        settled += 1
        time.sleep(0.05)
        assert len(inbox.deliveries) - settled <= 2
    eventually(lambda: transport.queue_depth(queue) == 0)
    with pytest.raises(RuntimeError):
        inbox.deliveries[0].ack()


def test_reconnects_after_the_broker_drops_its_connections_and_loses_nothing(
    transport: RabbitTransport, node: str, queue: str
) -> None:
    transport.declare(queue)
    inbox = Inbox()
    transport.consume(queue, inbox, prefetch=4)
    sent: list[str] = []
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            for i in range(300):
                m = message(str(i).encode())
                transport.publish(queue, m)
                sent.append(m.message_id)
                time.sleep(0.002)
        except BaseException as exc:
            errors.append(exc)

    publisher = threading.Thread(target=publish)
    publisher.start()
    eventually(lambda: len(inbox.deliveries) >= 20)
    assert close_connections(f"bus:{node}:") >= 3  # admin, publish, consume
    publisher.join(timeout=30)
    assert errors == []
    assert len(sent) == 300
    eventually(lambda: {d.message.message_id for d in inbox.deliveries} >= set(sent), timeout=8)
    transport.declare(queue)  # the admin connection comes back too
    eventually(lambda: transport.queue_depth(queue) == 0)


def test_request_reply_survives_dropped_connections(
    transport: RabbitTransport, node: str, queue: str
) -> None:
    transport.declare(queue)

    def answer(delivery: Delivery) -> None:
        with delivery.process():
            transport.reply(delivery.message, message(b"re:" + delivery.message.body))

    transport.consume(queue, answer)
    assert transport.request(queue, message(b"1")).result(timeout=5).body == b"re:1"
    close_connections(f"bus:{node}:")
    assert transport.request(queue, message(b"2")).result(timeout=10).body == b"re:2"


# -- requests -------------------------------------------------------------------------------------


def test_a_request_nobody_answers_fails_when_it_expires(
    transport: RabbitTransport, queue: str
) -> None:
    transport.declare(queue)
    future = transport.request(queue, message(expires_at=time.time() + 0.3))
    with pytest.raises(DeadlineExceeded):
        future.result(timeout=3)


def test_an_abandoned_request_future_is_not_kept(transport: RabbitTransport, queue: str) -> None:
    transport.declare(queue)
    future = transport.request(queue, message())
    ref = weakref.ref(future)
    del future
    gc.collect()
    assert ref() is None


# -- closing --------------------------------------------------------------------------------------


def test_close_stops_every_thread_and_is_idempotent(
    open_transport: Callable[..., RabbitTransport], queue: str
) -> None:
    before = set(threading.enumerate())
    transport: Transport = open_transport()
    transport.declare(queue)
    transport.consume(queue, Inbox())
    transport.request(queue, message())
    assert set(threading.enumerate()) - before
    transport.close()
    transport.close()
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(TransportClosed):
        transport.declare(queue)
