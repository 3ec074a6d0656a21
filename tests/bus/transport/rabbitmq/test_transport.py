"""What only the RabbitMQ transport promises: its topology, confirms, retry queues, reconnection.

The behaviour both transports share is in ``tests/contract``. These tests look at the broker
itself, through a separate plain pika connection and ``rabbitmqctl``. Each test uses its own
node and queue names and deletes its queues afterwards.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from bus.core.errors import BusUnavailable, DeadlineExceeded, ProviderUnavailable
from bus.transport import Delivery, Message, Transport, TransportClosed
from bus.transport.rabbitmq.topology import (
    DLQ,
    DLX,
    REQUESTS_EXCHANGE,
    RETRY_EXCHANGE,
    retry_bucket_ms,
    retry_queue,
)
from bus.transport.rabbitmq.transport import RabbitTransport, Unroutable
from tests.contract.conftest import Inbox, eventually, message
from tests.live import AMQP_URL, rabbitmqctl

pytestmark = pytest.mark.rabbitmq

URL = AMQP_URL


class Broker:
    """A plain pika connection for looking at the broker behind the transport's back."""

    def __init__(self) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(URL))
        self.channel = self.connection.channel()
        self.queues: list[str] = []

    def fresh(self) -> BlockingChannel:
        if not self.channel.is_open:
            self.channel = self.connection.channel()
        return self.channel

    def exists(self, queue: str) -> bool:
        try:
            self.fresh().queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return False
        return True

    def get(self, queue: str) -> tuple[pika.BasicProperties, bytes] | None:
        method, properties, body = self.fresh().basic_get(queue, auto_ack=True)
        return None if method is None else (properties, body)

    def find_dead_letter(self, message_id: str) -> pika.BasicProperties | None:
        """The headers of a message in bus.dlq, leaving the queue as it was."""
        channel = self.connection.channel()
        try:
            while True:
                method, properties, _ = channel.basic_get(DLQ, auto_ack=False)
                if method is None:
                    return None
                if properties.message_id == message_id:
                    return properties
        finally:
            channel.close()  # everything it holds goes back

    def close(self) -> None:
        channel = self.fresh()
        for queue in self.queues:
            channel.queue_delete(queue)
        self.connection.close()


def queue_info(name: str) -> dict[str, Any]:
    rows = json.loads(
        rabbitmqctl("list_queues", "name", "type", "arguments", "--formatter", "json", vhost=True)
    )
    [row] = [r for r in rows if r["name"] == name]
    row["arguments"] = {key: value for key, _type, value in row["arguments"]}
    return dict(row)


def close_connections(prefix: str) -> int:
    """Make the broker drop the transport's connections (as a broker restart would)."""
    closed = 0
    for line in rabbitmqctl("list_connections", "pid", "client_properties").splitlines():
        name = re.search(r'\{"connection_name","([^"]*)"\}', line)
        if name and name.group(1).startswith(prefix):
            rabbitmqctl("close_connection", line.split("\t")[0], "test: broker went away")
            closed += 1
    return closed


@pytest.fixture
def broker() -> Iterator[Broker]:
    b = Broker()
    yield b
    b.close()


@pytest.fixture
def node(broker: Broker) -> str:
    name = f"test-{uuid.uuid4().hex[:8]}"
    broker.queues.append(f"reply.{name}")
    return name


@pytest.fixture
def opened() -> Iterator[list[RabbitTransport]]:
    transports: list[RabbitTransport] = []
    yield transports
    for t in reversed(transports):
        t.close()


@pytest.fixture
def open_transport(node: str, opened: list[RabbitTransport]) -> Callable[..., RabbitTransport]:
    def open_(**kw: Any) -> RabbitTransport:
        t = RabbitTransport(URL, node=node, **kw)
        opened.append(t)
        return t

    return open_


@pytest.fixture
def transport(open_transport: Callable[..., RabbitTransport]) -> RabbitTransport:
    return open_transport()


@pytest.fixture
def queue(broker: Broker) -> str:
    name = f"test.{uuid.uuid4().hex}"
    broker.queues.append(name)
    return name


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


# -- retry, dead letters, expiry ------------------------------------------------------------------


def test_retry_delays_are_rounded_up_to_few_queues() -> None:
    assert retry_bucket_ms(0) == 0
    assert retry_bucket_ms(0.05) == 50
    assert retry_bucket_ms(0.3) == 300
    assert retry_bucket_ms(1.0) == 1000
    assert retry_bucket_ms(1.2) == 1500
    assert retry_bucket_ms(4) == 5000
    assert retry_bucket_ms(86_400) == 86_400_000
    assert retry_bucket_ms(90_000) == 25 * 3_600_000
    buckets = {retry_bucket_ms(s / 10) for s in range(1, 36_000)}  # 0.1 s .. 1 h
    assert len(buckets) < 30


def test_retry_waits_in_a_ttl_queue_then_comes_back_with_the_next_attempt(
    transport: RabbitTransport, broker: Broker, queue: str
) -> None:
    transport.declare(queue)
    sent = message(headers={"k": "v"})
    transport.publish(queue, sent)
    inbox = Inbox(lambda d: d.retry(0.3, "try-later"))
    sub = transport.consume(queue, inbox)
    inbox.wait_for(1)
    retried_at = time.monotonic()
    sub.cancel()

    info = queue_info(retry_queue(300))
    assert info["arguments"]["x-message-ttl"] == 300
    assert info["arguments"]["x-dead-letter-exchange"] == REQUESTS_EXCHANGE
    got = None
    while got is None:  # a generous bound: a loaded machine delays the broker's expiry too
        assert time.monotonic() - retried_at < 30, "the retried message never came back"
        time.sleep(0.02)
        got = broker.get(queue)
    assert time.monotonic() - retried_at >= 0.28
    properties, body = got
    assert (properties.message_id, body) == (sent.message_id, sent.body)
    assert properties.headers["x-bus-attempt"] == 2
    assert properties.headers["k"] == "v"
    [death] = properties.headers["x-death"]
    assert (death["queue"], death["reason"]) == (retry_queue(300), "expired")


def test_dead_letter_queue_keeps_reason_queue_and_attempts_in_headers(
    transport: RabbitTransport, broker: Broker, queue: str
) -> None:
    def settle(delivery: Delivery) -> None:
        with delivery.process(max_attempts=3, retry_delay_s=0.05):
            raise ProviderUnavailable("registry down")

    transport.declare(queue)
    sent = message()
    transport.publish(queue, sent)
    inbox = Inbox(settle)
    transport.consume(queue, inbox)
    inbox.wait_for(3)
    eventually(lambda: broker.find_dead_letter(sent.message_id) is not None)
    properties = broker.find_dead_letter(sent.message_id)
    assert properties is not None
    assert properties.headers["x-bus-reason"] == "provider-unavailable"
    assert properties.headers["x-bus-queue"] == queue
    assert properties.headers["x-bus-attempts"] == 3
    assert properties.delivery_mode == 2
    [dead] = [d for d in transport.dead_letters(1000) if d.message.message_id == sent.message_id]
    assert (dead.reason, dead.queue, dead.attempts) == ("provider-unavailable", queue, 3)
    assert broker.find_dead_letter(sent.message_id) is not None  # browsing took nothing away
    assert transport.purge_dead_letters(dead.id) == 1
    assert broker.find_dead_letter(sent.message_id) is None


def test_expiry_without_any_consumer_is_done_by_the_broker(
    transport: RabbitTransport, broker: Broker, queue: str
) -> None:
    transport.declare(queue)
    sent = message(expires_at=time.time() + 0.2)
    transport.publish(queue, sent)
    eventually(lambda: broker.find_dead_letter(sent.message_id) is not None, timeout=3)
    [dead] = [d for d in transport.dead_letters(1000) if d.message.message_id == sent.message_id]
    assert (dead.reason, dead.queue, dead.attempts) == ("expired", queue, 0)
    assert dead.message.expires_at == pytest.approx(sent.expires_at)
    transport.purge_dead_letters(dead.id)


def test_expiry_is_checked_again_on_delivery(
    open_transport: Callable[..., RabbitTransport], broker: Broker, queue: str
) -> None:
    publisher = open_transport()
    publisher.declare(queue)
    sent = message(expires_at=time.time() + 60)
    publisher.publish(queue, sent)
    later = open_transport(clock=lambda: time.time() + 120)  # a consumer whose clock says so
    inbox = Inbox()
    later.consume(queue, inbox)
    eventually(lambda: broker.find_dead_letter(sent.message_id) is not None)
    properties = broker.find_dead_letter(sent.message_id)
    assert properties is not None
    assert properties.headers["x-bus-reason"] == "expired"
    assert inbox.deliveries == []
    later.purge_dead_letters(properties.headers["x-bus-id"])


def test_retry_past_the_expiry_dead_letters_at_once(
    transport: RabbitTransport, broker: Broker, queue: str
) -> None:
    transport.declare(queue)
    sent = message(expires_at=time.time() + 5)
    transport.publish(queue, sent)
    inbox = Inbox(lambda d: d.retry(10, "try-later"))
    transport.consume(queue, inbox)
    inbox.wait_for(1)
    eventually(lambda: broker.find_dead_letter(sent.message_id) is not None)
    properties = broker.find_dead_letter(sent.message_id)
    assert properties is not None
    assert properties.headers["x-bus-reason"] == "expired"
    transport.purge_dead_letters(properties.headers["x-bus-id"])


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


class _Dropped(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "was forwarded already" in record.getMessage():
            self.count += 1


def test_a_retried_delivery_whose_ack_is_lost_leaves_one_live_copy(
    node: str, queue: str, opened: list[RabbitTransport]
) -> None:
    """The retry copy is published, then the consumer's connection drops before the ack: the
    broker delivers the original again. That stale original is dropped; only the copy runs."""

    class AckLost(RabbitTransport):
        def publish_retry(self, queue: str, message: Message, *, attempt: int,
                          delay_s: float) -> None:
            super().publish_retry(queue, message, attempt=attempt, delay_s=delay_s)
            assert close_connections(f"bus:{node}:consume:") >= 1  # before the ack goes out

    transport = AckLost(URL, node=node)
    opened.append(transport)
    transport.declare(queue)
    sent = message()
    transport.publish(queue, sent)

    def settle(delivery: Delivery) -> None:
        with delivery.process():
            if len(inbox.deliveries) == 1:
                delivery.retry(0.5, "try-later")

    inbox = Inbox(settle)
    dropped = _Dropped()
    logger = logging.getLogger("bus.transport.rabbitmq")
    logger.addHandler(dropped)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        transport.consume(queue, inbox)
        first = inbox.wait_for(1)[0]
        ids = lambda: [d.publish_id for d in inbox.deliveries]  # type: ignore[attr-defined]  # noqa: E731
        stale = lambda: ids().count(first.publish_id) > 1  # type: ignore[attr-defined]  # noqa: E731
        copied = lambda: any(i != first.publish_id for i in ids())  # type: ignore[attr-defined]  # noqa: E731
        eventually(lambda: (dropped.count >= 1 or stale()) and copied(), timeout=20)
    finally:
        logger.removeHandler(dropped)
        logger.setLevel(level)
    assert not stale(), "the original ran again beside its retry copy"
    assert dropped.count == 1
    assert [d.message.message_id for d in inbox.deliveries] == [sent.message_id] * 2
    eventually(lambda: transport.queue_depth(queue) == 0)
