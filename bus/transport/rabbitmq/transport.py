"""``RabbitTransport``: the ``Transport`` protocol on RabbitMQ (pika), for more than one machine.

Topology (declared idempotently at start-up, see ``rabbitmq_topology``):

* ``bus.requests``  topic exchange. Every work queue is bound to it under its own name, so a
  message for queue ``q`` is published to ``bus.requests`` with routing key ``q`` (mandatory:
  a message no queue takes fails the publish instead of vanishing).
* work queues (``declare(q)``, e.g. ``svc.<member>.<service>.<version>``) and the node's reply
  queues ``reply.<node>`` and ``reply.<node>.async``: durable quorum queues with
  ``x-dead-letter-exchange=bus.dlx``, ``x-dead-letter-strategy=at-least-once`` and
  ``x-overflow=reject-publish``.
* ``bus.retry``  headers exchange; ``bus.retry.<ms>``: quorum queues with ``x-message-ttl=<ms>``
  and ``x-dead-letter-exchange=bus.requests``, bound to ``bus.retry`` by the header
  ``bus-retry-delay-ms=<ms>``. ``Delivery.retry`` publishes a copy there under the work queue's
  name (attempt + 1) and acks the original; when the TTL runs out RabbitMQ dead-letters it back to
  ``bus.requests`` under that same routing key. Delays are rounded up to a 1-1.5-2-3-5-7 ladder
  so the retry queues stay few; a delay of 0 re-publishes to the work queue at once.
* ``bus.dlx``  fanout exchange -> ``bus.dlq`` (quorum). A consumer's ``dead_letter`` publishes
  there with ``x-bus-reason``, ``x-bus-queue``, ``x-bus-attempts``, ``x-bus-failed-at``; RabbitMQ
  dead-letters there itself what expires in a work queue (its ``x-death`` header says why).

Messages are persistent (delivery mode 2) and carry ``message_id``, ``correlation_id``,
``reply_to`` and headers; ``x-bus-id`` (unique per publish, the dead letter's id),
``x-bus-attempt`` and ``x-bus-expires-at`` are the transport's own and are not shown to
consumers. ``expires_at`` is also sent as the per-message TTL (``expiration``); as RabbitMQ only
expires messages at the head of a queue and drops the TTL of what it dead-letters (a retried
message), consumers check ``expires_at`` on delivery too and dead-letter with reason ``expired``.
Messages to reply queues (``reply.*``) carry no TTL, and their consumer drops (acks) an expired
one instead: a late reply does not belong in the dead letters (see ``rabbitmq_topology``).

``publish`` returns once the broker confirmed the message (publisher confirms; see
``rabbitmq_publisher``: one I/O thread, batched acks, unconfirmed messages resent after a
reconnect). Consumers ack manually after the handler's work (``Delivery.process``) with a
bounded prefetch (``basic_qos``). ``Delivery.attempt`` is ``x-bus-attempt`` plus the quorum
queue's ``x-delivery-count``, so it survives redelivery after a consumer died.

Requests are answered on the durable per-node queue ``reply.<node>`` (``x-expires``: one hour
unused by default); why not direct reply-to, and how the futures of requests are kept, is in
``bus.transport.replies``. ``request`` returns at once, without waiting for the confirm (the
gateway calls it on its event loop); a refused publish fails the future, and a future done
before its request was sent withdraws it.

Threads: pika connections are not thread-safe, so each role has its own. The publisher has an
I/O thread; each subscription has an I/O thread (its connection, channel and prefetch) and
``prefetch`` worker threads that run the handler, so a slow handler never stalls heartbeats —
except the reply queue's, whose handler only completes a future: it runs on its I/O thread
(``inline``), so a reply reaches the waiting event loop with one hand-off; settling from
any thread is handed to the I/O thread with ``add_callback_threadsafe``. ``declare``,
``queue_depth`` and the dead-letter operations share an admin connection behind a lock. Every
connection reconnects with exponential backoff (tenacity) when the broker goes away.

``dead_letters`` browses ``bus.dlq`` without taking anything away: it ``basic_get``s up to
``limit`` messages without acking and then requeues them in order (a quorum queue serves
returned messages first, so the order is kept). ``replay`` and ``purge_dead_letters(id)`` scan
the same way and ack only the one they act on. While a browse runs, another browse sees fewer.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TypeVar

import pika
import pika.exceptions
import tenacity
from pika.adapters.blocking_connection import BlockingChannel

from bus.core.errors import BusError, BusUnavailable
from bus.transport.base import (
    DeadLetter,
    Delivery,
    Handler,
    Message,
    QueueStats,
    Subscription,
    TransportClosed,
    TransportStats,
    reply_queue,
)
from bus.transport.rabbitmq.consumer import RabbitSubscription
from bus.transport.rabbitmq.forwarded import ForwardedCopies
from bus.transport.rabbitmq.publisher import ConfirmingPublisher, Unroutable
from bus.transport.rabbitmq.topology import (
    DLQ,
    DLX,
    H_ATTEMPTS,
    H_FAILED_AT,
    H_QUEUE,
    H_REASON,
    H_RETRY_DELAY,
    REQUESTS_EXCHANGE,
    RETRY_EXCHANGE,
    broker_errors,
    connection_parameters,
    declare_base,
    declare_retry_queue,
    declare_work_queue,
    encode,
    expires_in_broker,
    retry_bucket_ms,
    retry_queue,
    scan_dead_letters,
)
from bus.transport.replies import PendingReplies, complete

__all__ = ["RabbitTransport", "Unroutable"]

log = logging.getLogger("bus.transport.rabbitmq")

T = TypeVar("T")


class RabbitTransport:
    """The RabbitMQ transport of node ``node``; ``url`` is an ``amqp://`` URL.

    ``publish_timeout_s``: how long ``publish`` waits for the broker's confirm (it keeps
    waiting across a reconnect; ``request`` does not wait, see there). ``connect_timeout_s``:
    how long start-up, ``consume`` and the admin operations try to reach the broker.
    ``reply_queue_expires_s``: ``x-expires`` of ``reply.<node>``. ``queue_expires_s``:
    ``x-expires`` of the queues ``declare`` creates; only for tests and throw-away set-ups, as
    an expired queue's messages are gone. ``clock``: unix time, for expiry.
    """

    replies_may_block = False  # the reply queue completes futures on its I/O thread (inline)

    def __init__(
        self,
        url: str,
        *,
        node: str,
        publish_timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        reply_queue_expires_s: float | None = 3600.0,
        queue_expires_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node = node
        self._url = url
        self._clock = clock
        self._publish_timeout_s = publish_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._reply_expires_ms = _ms(reply_queue_expires_s)
        self._queue_expires_ms = _ms(queue_expires_s)
        self._closed = False
        self._admin_lock = threading.RLock()
        self._admin_connection: pika.BlockingConnection | None = None
        self._admin_channel: BlockingChannel | None = None
        self._retry_queues: set[int] = set()
        self._subscriptions: list[RabbitSubscription] = []
        self._replies: RabbitSubscription | None = None
        self._waiting = PendingReplies(clock)
        self.forwarded = ForwardedCopies(clock=clock)  # see bus.transport.rabbitmq.forwarded
        try:
            self._admin("declare the topology", self._declare_topology)
        except BaseException:
            self._close_admin()
            raise
        self._publisher = ConfirmingPublisher(
            self._parameters("publish"), name=self._name("publish")
        )

    # -- the Transport protocol -------------------------------------------------------------------

    def declare(self, queue: str) -> None:
        self._admin(
            f"declare {queue}",
            lambda channel: declare_work_queue(channel, queue, expires_ms=self._queue_expires_ms),
        )

    def publish(self, queue: str, message: Message, *, timeout_s: float | None = None) -> None:
        properties = encode(message, now=self._clock(), expire=expires_in_broker(queue))
        self._send(REQUESTS_EXCHANGE, queue, message, properties, timeout_s=timeout_s)

    def consume(self, queue: str, handler: Handler, *, prefetch: int = 8) -> Subscription:
        return self._subscribe(queue, handler, prefetch=prefetch, role=f"consume:{queue}")

    def request(self, queue: str, message: Message) -> Future[Message]:
        """Publish ``message`` and return the future of its reply without waiting for the
        broker's confirm: callers run on event loops (the gateway), which must not stall while
        the broker is away. The future fails with the publish's ``BusUnavailable`` if the
        broker refuses the message; once the future is done (answered, cancelled, expired) a
        message still waiting to be sent is withdrawn."""
        self._ensure_replies()
        message = dataclasses.replace(message, reply_to=reply_queue(self.node))
        future: Future[Message] = Future()
        self._waiting.add(message.message_id, future, message.expires_at)
        try:
            self._check_open()
            published = self._publisher.submit(
                REQUESTS_EXCHANGE, queue, message.body, encode(message, now=self._clock())
            )
        except BaseException:
            future.cancel()
            raise
        caller = weakref.ref(future)  # held weakly, as in PendingReplies: the caller may drop it

        def refused(done: Future[None]) -> None:
            error = None if done.cancelled() else done.exception()
            waiting = caller()
            if isinstance(error, BusError) and waiting is not None:
                complete(waiting, error=error)

        published.add_done_callback(refused)
        future.add_done_callback(lambda _done: published.cancel())
        return future

    def reply(self, request: Message, message: Message) -> None:
        if not request.reply_to:
            raise ValueError(f"message {request.message_id} asks for no reply")
        answer = dataclasses.replace(message, correlation_id=request.message_id)
        self.publish(request.reply_to, answer)

    def queue_depth(self, queue: str) -> int:
        def depth(channel: BlockingChannel) -> int:
            return int(channel.queue_declare(queue, passive=True).method.message_count)

        return self._admin(f"queue depth of {queue}", depth)

    def is_connected(self) -> bool:
        """The publisher and every subscription of this transport are connected now."""
        if self._closed or not self._publisher.connected:
            return False
        with self._admin_lock:
            subscriptions = [s for s in self._subscriptions if s.active]
            if self._replies is not None and self._replies.active:
                subscriptions.append(self._replies)
        return all(s.connected for s in subscriptions)

    def stats(self, queues: Sequence[str]) -> TransportStats:
        """Passive declares on the admin connection. ``retrying`` counts the retry queues this
        process has used (they are shared by all nodes and declared on first use)."""
        if not self.is_connected():
            raise BusUnavailable("RabbitMQ: not connected")

        retry_queues = [retry_queue(ms) for ms in sorted(self._retry_queues)]  # one C-level copy

        def count(channel: BlockingChannel) -> tuple[dict[str, QueueStats], int, int]:
            found: dict[str, QueueStats] = {}
            for name in [*queues, DLQ, *retry_queues]:
                try:
                    ok = channel.queue_declare(name, passive=True).method
                except pika.exceptions.ChannelClosedByBroker:  # no such queue (404)
                    channel = self._channel()
                    continue
                found[name] = QueueStats(int(ok.message_count), int(ok.consumer_count))
            retrying = sum(found[q].depth for q in retry_queues if q in found)
            dlq = found[DLQ].depth if DLQ in found else 0
            return {q: found[q] for q in queues if q in found}, dlq, retrying

        by_queue, dead, retrying = self._admin("count queues", count)
        return TransportStats(by_queue, dead, retrying)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        found: list[DeadLetter] = []

        def visit(dead: DeadLetter) -> bool | None:
            found.append(dead)
            return None if len(found) < limit else False

        if limit > 0:
            self._scan_dead_letters(visit)
        return found

    def replay(self, dead_letter_id: str) -> Message:
        replayed: list[Message] = []

        def visit(dead: DeadLetter) -> bool | None:
            if dead.id != dead_letter_id:
                return None
            # The original message (same message id), as a fresh first attempt.
            properties = encode(
                dead.message, now=self._clock(), expire=expires_in_broker(dead.queue)
            )
            self._send(REQUESTS_EXCHANGE, dead.queue, dead.message, properties)
            replayed.append(dead.message)
            return True

        self._scan_dead_letters(visit)
        if not replayed:
            raise KeyError(dead_letter_id)
        return replayed[0]

    def purge_dead_letters(self, dead_letter_id: str | None = None) -> int:
        if dead_letter_id is None:
            return self._admin(
                "purge dead letters",
                lambda channel: int(channel.queue_purge(DLQ).method.message_count),
            )
        purged = self._scan_dead_letters(lambda dead: True if dead.id == dead_letter_id else None)
        return purged

    def close(self) -> None:
        with self._admin_lock:
            if self._closed:
                return
            self._closed = True
        for subscription in [*self._subscriptions, *([self._replies] if self._replies else [])]:
            subscription.cancel()
        self._publisher.close()
        self._close_admin()
        self._waiting.fail_all(TransportClosed("the transport closed before the reply came"))

    def __enter__(self) -> RabbitTransport:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- used by deliveries (from consumer threads) -----------------------------------------------

    def now(self) -> float:
        return self._clock()

    def publish_retry(self, queue: str, message: Message, *, attempt: int, delay_s: float) -> None:
        delay_ms = retry_bucket_ms(delay_s)
        expire = expires_in_broker(queue)
        if delay_ms == 0:
            properties = encode(message, now=self._clock(), attempt=attempt, expire=expire)
            self._send(REQUESTS_EXCHANGE, queue, message, properties)
            return
        if delay_ms not in self._retry_queues:
            self._admin(
                f"declare retry queue {delay_ms}ms",
                lambda channel: declare_retry_queue(channel, delay_ms),
            )
            self._retry_queues.add(delay_ms)
        properties = encode(
            message,
            now=self._clock(),
            attempt=attempt,
            expire=expire,
            extra={H_RETRY_DELAY: str(delay_ms)},
        )
        self._send(RETRY_EXCHANGE, queue, message, properties)

    def publish_dead_letter(
        self, queue: str, message: Message, *, attempts: int, reason: str
    ) -> None:
        now = self._clock()
        properties = encode(
            message,
            now=now,
            attempt=attempts,
            expire=False,
            extra={H_REASON: reason, H_QUEUE: queue, H_ATTEMPTS: attempts, H_FAILED_AT: repr(now)},
        )
        self._send(DLX, queue, message, properties)

    # -- internals --------------------------------------------------------------------------------

    def _name(self, role: str) -> str:
        return f"bus:{self.node}:{role}"

    def _parameters(self, role: str) -> pika.URLParameters:
        return connection_parameters(self._url, self._name(role))

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosed("the transport is closed")

    def _send(
        self, exchange: str, routing_key: str, message: Message, properties: pika.BasicProperties,
        *, timeout_s: float | None = None,
    ) -> None:
        self._check_open()
        wait_s = self._publish_timeout_s if timeout_s is None else timeout_s
        self._publisher.publish(exchange, routing_key, message.body, properties, timeout_s=wait_s)

    def _subscribe(
        self,
        queue: str,
        handler: Handler,
        *,
        prefetch: int,
        role: str,
        idle: Callable[[], None] | None = None,
        prepare: Callable[[BlockingChannel], None] | None = None,
        inline: bool = False,
    ) -> RabbitSubscription:
        self._check_open()
        subscription = RabbitSubscription(
            self,
            queue,
            handler,
            prefetch=prefetch,
            parameters=self._parameters(role),
            name=self._name(role),
            idle=idle,
            prepare=prepare,
            inline=inline,
        )
        subscription.start(timeout_s=self._connect_timeout_s)
        with self._admin_lock:
            self._subscriptions = [s for s in self._subscriptions if s.active]
            if role.startswith("consume:"):
                self._subscriptions.append(subscription)
        return subscription

    def _declare_topology(self, channel: BlockingChannel) -> None:
        declare_base(channel)
        self._declare_replies(channel)

    def _declare_replies(self, channel: BlockingChannel) -> None:
        declare_work_queue(channel, reply_queue(self.node), expires_ms=self._reply_expires_ms)

    def _admin(self, what: str, operation: Callable[[BlockingChannel], T]) -> T:
        """Run ``operation`` on the admin channel; reconnect once if the connection was lost."""
        with self._admin_lock:
            self._check_open()
            for attempt in (1, 2):
                try:
                    with broker_errors(what):
                        return operation(self._channel())
                except BusUnavailable as exc:
                    connection = self._admin_connection
                    lost = isinstance(exc.__cause__, pika.exceptions.AMQPConnectionError) or not (
                        connection is not None and connection.is_open
                    )  # e.g. a heartbeat-less idle connection the broker closed
                    if attempt == 2 or not lost:
                        raise
                    self._close_admin()
            raise AssertionError("unreachable")

    def _channel(self) -> BlockingChannel:
        if self._admin_connection is None or not self._admin_connection.is_open:
            self._close_admin()
            self._admin_connection = tenacity.Retrying(
                retry=tenacity.retry_if_exception_type(
                    (pika.exceptions.AMQPConnectionError, OSError)
                ),
                wait=tenacity.wait_exponential(multiplier=0.05, max=2.0)
                + tenacity.wait_random(0, 0.05),
                stop=tenacity.stop_after_delay(self._connect_timeout_s),
                reraise=True,
            )(pika.BlockingConnection, self._parameters("admin"))
        if self._admin_channel is None or not self._admin_channel.is_open:
            self._admin_channel = self._admin_connection.channel()
        return self._admin_channel

    def _close_admin(self) -> None:
        connection, self._admin_connection, self._admin_channel = self._admin_connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except (pika.exceptions.AMQPError, OSError):
                log.debug("admin connection did not close cleanly", exc_info=True)

    def _scan_dead_letters(self, visit: Callable[[DeadLetter], bool | None]) -> int:
        return self._admin("browse dead letters", lambda channel: scan_dead_letters(channel, visit))

    def _ensure_replies(self) -> None:
        with self._admin_lock:
            if self._replies is not None and self._replies.active:
                return
            self._check_open()
            self._replies = self._subscribe(
                reply_queue(self.node),
                self._on_reply,
                prefetch=8,
                role="replies",
                idle=self._waiting.expire,
                prepare=self._declare_replies,  # again on each reconnect: it may have expired
                inline=True,  # completing a future never blocks: no worker thread hand-off
            )

    def _on_reply(self, delivery: Delivery) -> None:
        self._waiting.answer(delivery)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)
