"""The RabbitMQ side of ``RabbitTransport``: names, queue arguments, headers and error mapping.

Everything the broker must hold is declared here, idempotently (re-declaring with the same
arguments is a no-op for RabbitMQ), by ``declare_base``, ``declare_work_queue`` and
``declare_retry_queue``. The topology itself is described in ``bus.transport.rabbitmq.transport``.

Reply queues (``reply.<node>``, ``reply.<node>.async``) are declared like work queues, with
``x-dead-letter-exchange=bus.dlx``, but the messages published to them carry no per-message TTL
(``expires_in_broker``): RabbitMQ would dead-letter an expired reply to ``bus.dlq`` itself, and a
reply that came after its request expired is worth nothing there (nobody waits for it, a replay
answers no one); the consumer drops it instead (``rabbitmq_consumer``). Leaving the queue
arguments alone keeps existing reply queues declarable: RabbitMQ refuses to re-declare a queue
with other arguments (``PRECONDITION_FAILED``).

This module also maps a ``Message`` to AMQP properties and back (``encode``/``decode``/
``dead_letter_of``), keeps the transport's own headers (``x-bus-…``) out of what consumers see,
and is the one place pika's exceptions become ``BusUnavailable`` (``broker_errors``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

import pika
import pika.exceptions
import tenacity
from pika.adapters.blocking_connection import BlockingChannel

from bus.core.errors import BusUnavailable
from bus.transport.base import DeadLetter, Message, is_reply_queue

__all__ = [
    "DLQ",
    "DLX",
    "H_ATTEMPT",
    "H_ATTEMPTS",
    "H_EXPIRES_AT",
    "H_FAILED_AT",
    "H_ID",
    "H_QUEUE",
    "H_REASON",
    "H_RETRY_DELAY",
    "REQUESTS_EXCHANGE",
    "RETRY_EXCHANGE",
    "attempt_of",
    "broker_errors",
    "connection_parameters",
    "dead_letter_of",
    "declare_base",
    "declare_retry_queue",
    "declare_work_queue",
    "decode",
    "encode",
    "expires_in_broker",
    "reconnecting",
    "retry_bucket_ms",
    "retry_queue",
    "scan_dead_letters",
]

log = logging.getLogger("bus.transport.rabbitmq")

REQUESTS_EXCHANGE = "bus.requests"
RETRY_EXCHANGE = "bus.retry"
DLX = "bus.dlx"
DLQ = "bus.dlq"

H_ID = "x-bus-id"  # unique per publish: the dead letter id, and how returns are matched
H_ATTEMPT = "x-bus-attempt"  # the attempt the next delivery is (1 for a fresh message)
H_EXPIRES_AT = "x-bus-expires-at"  # Message.expires_at, unix seconds (float)
H_REASON = "x-bus-reason"
H_QUEUE = "x-bus-queue"
H_ATTEMPTS = "x-bus-attempts"
H_FAILED_AT = "x-bus-failed-at"
# Routes a retry to its delay queue through the headers exchange. It must not start with
# "x-": RabbitMQ's headers exchange ignores such headers when matching.
H_RETRY_DELAY = "bus-retry-delay-ms"

# Headers RabbitMQ adds when it dead-letters or redelivers; never part of a Message.
_BROKER_HEADERS = ("x-death", "x-delivery-count", "x-first-death-", "x-last-death-")

# Work queues (and the retry queues) are quorum queues that dead-letter at-least-once, which
# RabbitMQ only allows together with overflow=reject-publish.
_QUORUM = {"x-queue-type": "quorum"}
_AT_LEAST_ONCE_DLX = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
# bus.dlq is browsed with get + requeue, which counts as a delivery on a quorum queue; RabbitMQ 4
# drops a message after 20 such returns unless the limit is set. Nothing else delivers from it.
_DLQ_DELIVERY_LIMIT = 1_000_000

# Retry delays are rounded up to this ladder (ms) so the number of retry queues stays bounded:
# 10, 15, 20, 30, 50, 70, 100 … 70 000 000 ms, then one day.
_LADDER_MS = sorted(
    {int(m * 10**k) for k in range(1, 8) for m in (1, 1.5, 2, 3, 5, 7)} | {86_400_000}
)

T = TypeVar("T")


def work_queue_arguments() -> dict[str, Any]:
    return {**_QUORUM, "x-dead-letter-exchange": DLX, **_AT_LEAST_ONCE_DLX}


def retry_queue(delay_ms: int) -> str:
    return f"bus.retry.{delay_ms}"


def retry_bucket_ms(delay_s: float) -> int:
    """The delay (ms) of the retry queue used for ``delay_s``: the smallest step not shorter."""
    ms = math.ceil(max(0.0, delay_s) * 1000)
    if ms == 0:
        return 0
    for step in _LADDER_MS:
        if step >= ms:
            return step
    return math.ceil(ms / 3_600_000) * 3_600_000  # beyond a day: whole hours


# -- declaring ------------------------------------------------------------------------------------


def declare_base(channel: BlockingChannel) -> None:
    """The exchanges and the dead-letter queue every node shares."""
    channel.exchange_declare(REQUESTS_EXCHANGE, "topic", durable=True)
    channel.exchange_declare(RETRY_EXCHANGE, "headers", durable=True)
    channel.exchange_declare(DLX, "fanout", durable=True)
    channel.queue_declare(
        DLQ, durable=True, arguments={**_QUORUM, "x-delivery-limit": _DLQ_DELIVERY_LIMIT}
    )
    channel.queue_bind(DLQ, DLX)


def declare_work_queue(
    channel: BlockingChannel, queue: str, *, expires_ms: int | None = None
) -> None:
    """A durable quorum queue bound to ``bus.requests`` by its own name.

    With ``expires_ms`` RabbitMQ deletes the queue, messages and all, once it has had no
    consumer (and no declare) for that long (``x-expires``). The node's reply queue uses it:
    replies are only useful to the process that asked, and node names may not outlive a
    deployment."""
    arguments = work_queue_arguments()
    if expires_ms is not None:
        arguments["x-expires"] = expires_ms
    channel.queue_declare(queue, durable=True, arguments=arguments)
    channel.queue_bind(queue, REQUESTS_EXCHANGE, routing_key=queue)


def declare_retry_queue(channel: BlockingChannel, delay_ms: int) -> None:
    """``bus.retry.<ms>``: holds a message ``delay_ms``, then dead-letters it back to
    ``bus.requests`` under its original routing key (the work queue's name)."""
    name = retry_queue(delay_ms)
    channel.queue_declare(
        name,
        durable=True,
        arguments={
            **_QUORUM,
            "x-message-ttl": delay_ms,
            "x-dead-letter-exchange": REQUESTS_EXCHANGE,
            **_AT_LEAST_ONCE_DLX,
        },
    )
    channel.queue_bind(
        name, RETRY_EXCHANGE, arguments={"x-match": "all", H_RETRY_DELAY: str(delay_ms)}
    )


# -- messages -------------------------------------------------------------------------------------


def expires_in_broker(queue: str) -> bool:
    """Whether messages for ``queue`` carry ``expires_at`` as per-message TTL, for RabbitMQ to
    dead-letter them when it passes: not on reply queues, whose consumer drops expired ones."""
    return not is_reply_queue(queue)


def _is_internal(header: str) -> bool:
    return (
        header.startswith("x-bus-") or header == H_RETRY_DELAY or header.startswith(_BROKER_HEADERS)
    )


def encode(
    message: Message,
    *,
    now: float,
    attempt: int = 1,
    expire: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> pika.BasicProperties:
    """AMQP properties for ``message``: persistent, a fresh ``x-bus-id``, the attempt, and the
    remaining lifetime as per-message TTL (``expiration``, ms) unless ``expire`` is false."""
    headers: dict[str, Any] = dict(message.headers)
    headers[H_ID] = uuid.uuid4().hex
    headers[H_ATTEMPT] = attempt
    expiration = None
    if message.expires_at is not None:
        headers[H_EXPIRES_AT] = repr(float(message.expires_at))  # pika has no float type
        if expire:
            expiration = str(max(0, math.ceil((message.expires_at - now) * 1000)))
    if extra:
        headers.update(extra)
    return pika.BasicProperties(
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        expiration=expiration,
        timestamp=int(now),
        headers=headers,
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decode(properties: pika.BasicProperties, body: bytes) -> Message:
    """The ``Message`` as published, without the transport's and the broker's headers."""
    raw: Mapping[str, Any] = properties.headers or {}
    expires_at = raw.get(H_EXPIRES_AT)
    return Message(
        body=body,
        message_id=properties.message_id or "",
        correlation_id=properties.correlation_id,
        reply_to=properties.reply_to,
        expires_at=float(_text(expires_at)) if expires_at is not None else None,
        headers={k: _text(v) for k, v in raw.items() if not _is_internal(k)},
    )


def attempt_of(properties: pika.BasicProperties) -> int:
    """The attempt this delivery is: ``x-bus-attempt`` (bumped on retry) plus the deliveries the
    quorum queue counted for this copy (``x-delivery-count``: consumers that died or requeued)."""
    headers: Mapping[str, Any] = properties.headers or {}
    return int(headers.get(H_ATTEMPT, 1)) + int(headers.get("x-delivery-count", 0))


def dead_letter_of(properties: pika.BasicProperties, body: bytes) -> DeadLetter:
    """Read a message of ``bus.dlq``: dead-lettered by a consumer (``x-bus-reason`` …) or by the
    broker itself (``x-death``, newest first: a message that expired in its queue)."""
    headers: Mapping[str, Any] = properties.headers or {}
    deaths = headers.get("x-death") or [{}]
    death: Mapping[str, Any] = deaths[0]
    if H_REASON in headers:
        reason = _text(headers[H_REASON])
        queue = _text(headers.get(H_QUEUE, ""))
        attempts = int(headers.get(H_ATTEMPTS, 0))
        failed_at = float(_text(headers.get(H_FAILED_AT, 0.0)))
    else:
        reason = _text(death.get("reason", "unknown"))
        queue = _text(death.get("queue", ""))
        # Expired (or rejected) in the queue: the attempt it was waiting for never happened.
        attempts = int(headers.get(H_ATTEMPT, 1)) - 1
        when = death.get("time")
        failed_at = when.timestamp() if isinstance(when, datetime) else 0.0
    message = decode(properties, body)
    return DeadLetter(
        id=_text(headers.get(H_ID, message.message_id)),
        queue=queue,
        message=message,
        reason=reason,
        attempts=attempts,
        failed_at=failed_at,
    )


def scan_dead_letters(admin: BlockingChannel, visit: Callable[[DeadLetter], bool | None]) -> int:
    """Get ``bus.dlq``'s messages one by one (unacked) and show each to ``visit``: ``True``
    takes the message away (acks it), ``False`` stops the scan, ``None`` goes on. Everything
    not taken is requeued in its order (a quorum queue serves returned messages first).
    Returns how many were taken."""
    channel = admin.connection.channel()  # closing it returns whatever is still held
    held: list[int] = []
    taken = 0
    try:
        # Until the queue has nothing ready: its message count may lag behind.
        while True:
            method, properties, body = channel.basic_get(DLQ, auto_ack=False)
            if method is None:
                break
            verdict = visit(dead_letter_of(properties, body))
            if verdict is True:
                channel.basic_ack(method.delivery_tag)
                taken += 1
            else:
                held.append(method.delivery_tag)
            if verdict is not None:
                break
        for tag in held:
            channel.basic_nack(tag, requeue=True)
    finally:
        if channel.is_open:
            channel.close()
    return taken


# -- connections and errors -----------------------------------------------------------------------


def connection_parameters(url: str, name: str) -> pika.URLParameters:
    """Parameters for ``url``, naming the connection (``rabbitmqctl list_connections name``).

    One attempt per connect: reconnection and its backoff are ``reconnecting``'s job."""
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.retry_delay = 0
    params.socket_timeout = 5
    params.client_properties = {"connection_name": name, "product": "interagency-bus"}
    return params


@contextlib.contextmanager
def broker_errors(what: str) -> Iterator[None]:
    """The one place pika's (and the socket's) exceptions become ``BusUnavailable``."""
    try:
        yield
    except (pika.exceptions.AMQPError, OSError) as exc:
        raise BusUnavailable(f"RabbitMQ: {what} failed ({type(exc).__name__}: {exc})") from exc


class ConnectionLost(Exception):
    """A session ended before it was up long enough to reset the backoff."""


def reconnecting(
    session: Callable[[], None],
    stopping: threading.Event,
    *,
    name: str,
    max_backoff_s: float = 5.0,
    healthy_after_s: float = 1.0,
) -> None:
    """Run ``session`` again and again until ``stopping`` is set, with exponential backoff.

    ``session`` connects, works until its connection is lost, and returns (or raises). A
    session that lasted ``healthy_after_s`` resets the backoff: the next connect is immediate.
    """

    def once() -> None:
        started = time.monotonic()
        error: BaseException | None = None
        try:
            session()
        except (pika.exceptions.AMQPError, OSError, BusUnavailable) as exc:
            error = exc
        except Exception as exc:  # a bug in pika or in us must not end the thread
            log.exception("%s: session failed", name)
            error = exc
        if stopping.is_set():
            return
        log.warning("%s: connection lost (%s); reconnecting", name, type(error).__name__)
        if time.monotonic() - started < healthy_after_s:
            raise ConnectionLost(name) from error

    def sleep(seconds: float) -> None:
        stopping.wait(seconds)

    while not stopping.is_set():
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(ConnectionLost),
            wait=tenacity.wait_exponential(multiplier=0.05, max=max_backoff_s)
            + tenacity.wait_random(0, 0.05),
            stop=lambda _state: stopping.is_set(),
            sleep=sleep,
            reraise=True,
        )
        with contextlib.suppress(ConnectionLost):
            retrying(once)
