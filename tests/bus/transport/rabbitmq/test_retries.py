"""The RabbitMQ transport's retry queues, dead letters and expiry, and a retried delivery whose
ack is lost with its connection. Fixtures and the broker view: ``conftest.py``, ``broker.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from bus.core.errors import ProviderUnavailable
from bus.transport import Delivery, Message
from bus.transport.rabbitmq.topology import (
    REQUESTS_EXCHANGE,
    retry_bucket_ms,
    retry_queue,
)
from bus.transport.rabbitmq.transport import RabbitTransport
from tests.bus.transport.rabbitmq.broker import URL, Broker, close_connections, queue_info
from tests.contract.conftest import Inbox, eventually, message

pytestmark = pytest.mark.rabbitmq


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
