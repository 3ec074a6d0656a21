"""Consuming for ``RabbitTransport``: a subscription's threads and its deliveries.

A ``RabbitSubscription`` owns one ``BlockingConnection`` on its I/O thread, with ``basic_qos``
bounding the unacked messages to ``prefetch`` and a manual-ack consumer on the queue. The I/O
thread only moves messages from the broker to ``prefetch`` worker threads (so up to ``prefetch``
handlers run at once; with ``prefetch=1`` they run one by one, in queue order), which check
``expires_at`` (an expired message is dead-lettered, or dropped on a reply queue: see
``RabbitDelivery.expire``) and run the handler; acks (from the worker or any other thread) go
back to the I/O thread through ``add_callback_threadsafe``. When the connection is lost the I/O
thread reconnects with backoff; deliveries from the lost connection are stale: settling them
does nothing, as RabbitMQ delivers them again (``redelivered``, ``x-delivery-count`` + 1). A
delivery that was retried or dead-lettered (its copy published) and whose ack was then lost
comes back too: it is dropped, since its copy lives on (``bus.transport.rabbitmq.forwarded``).

An ``inline`` subscription has no worker threads: its I/O thread runs the handler as each
message arrives and settles it there, with no hand-off either way. For handlers that never
block, such as the reply queue's, which only completes the waiting request's future (whose
asyncio wrapper wakes the event loop): the reply goes broker -> I/O thread -> event loop. The
``idle`` task then runs on the I/O thread too, every ``_POLL_S``.

``cancel()`` stops taking messages, lets the handler that is running finish and settle, and
closes the connection (RabbitMQ requeues whatever was prefetched but not handled; a quorum queue
counts that as a delivery, so such a message's next ``attempt`` is one higher).
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

import pika
import pika.exceptions
import pika.spec
from pika.adapters.blocking_connection import BlockingChannel

from bus.core.errors import BusError, BusUnavailable
from bus.transport.base import Delivery, Handler, Message, is_reply_queue
from bus.transport.rabbitmq.forwarded import ForwardedCopies
from bus.transport.rabbitmq.topology import H_ID, attempt_of, broker_errors, decode, reconnecting

__all__ = ["RabbitDelivery", "RabbitSubscription"]

log = logging.getLogger("bus.transport.rabbitmq")

_POLL_S = 0.1
_SETTLE_TIMEOUT_S = 5.0
_STOP_GRACE_S = 30.0


class _Host(Protocol):
    """What a subscription needs from its transport."""

    forwarded: ForwardedCopies

    def now(self) -> float: ...

    def publish_retry(
        self, queue: str, message: Message, *, attempt: int, delay_s: float
    ) -> None: ...

    def publish_dead_letter(
        self, queue: str, message: Message, *, attempts: int, reason: str
    ) -> None: ...


class RabbitDelivery(Delivery):
    def __init__(
        self,
        subscription: RabbitSubscription,
        generation: int,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        redelivered = (
            bool(method.redelivered)
            or int((properties.headers or {}).get("x-delivery-count", 0)) > 0
        )
        super().__init__(
            subscription.queue,
            decode(properties, body),
            attempt=attempt_of(properties),
            redelivered=redelivered,
        )
        self._subscription = subscription
        self.generation = generation
        self._tag: int = method.delivery_tag
        publish_id = (properties.headers or {}).get(H_ID)
        self.publish_id = publish_id if isinstance(publish_id, str) else None

    def ack(self) -> None:
        self._claim()
        self._subscription.settle(self.generation, lambda ch: ch.basic_ack(self._tag))

    def retry(self, delay_s: float, reason: str) -> None:
        expires_at = self.message.expires_at
        if expires_at is not None and expires_at <= self._subscription.host.now() + delay_s:
            self.expire()  # nobody would work on it after the delay
            return
        self._claim()
        log.info(
            "retrying %s from %s in %.3fs: %s", self.message.message_id, self.queue, delay_s, reason
        )
        self._forward(
            lambda host: host.publish_retry(
                self.queue, self.message, attempt=self.attempt + 1, delay_s=delay_s
            )
        )

    def dead_letter(self, reason: str) -> None:
        self._claim()
        log.warning("dead-lettering %s from %s: %s", self.message.message_id, self.queue, reason)
        self._forward(
            lambda host: host.publish_dead_letter(
                self.queue, self.message, attempts=self.attempt, reason=reason
            )
        )

    def expire(self) -> None:
        """Settle a message whose ``expires_at`` passed: dropped (acked) on a reply queue, where
        nobody waits for a late reply any more; dead-lettered with reason ``expired`` elsewhere."""
        if not is_reply_queue(self.queue):
            self.dead_letter("expired")
            return
        log.info("message %s expired in %s", self.message.message_id, self.queue)
        self.ack()

    def _claim(self) -> None:
        if self.settled:
            raise RuntimeError(f"message {self.message.message_id} is already settled")
        self.settled = True

    def _forward(self, publish: Callable[[_Host], None]) -> None:
        """Publish the copy (confirmed), then ack the original. A stale delivery is left alone:
        RabbitMQ delivers it again. If the copy cannot be published the original is requeued."""
        subscription = self._subscription
        if not subscription.is_current(self.generation):
            return
        forwarded, publish_id = subscription.host.forwarded, self.publish_id
        if publish_id is not None:  # should the ack be lost, the original is then dropped
            forwarded.forwarding(publish_id)
        try:
            publish(subscription.host)
        except BaseException as exc:
            if publish_id is not None:
                forwarded.abandoned(publish_id)
            if isinstance(exc, BusError):
                subscription.settle(
                    self.generation, lambda ch: ch.basic_nack(self._tag, requeue=True)
                )
            raise
        if publish_id is not None:
            forwarded.forwarded(publish_id, self.message.expires_at)
        subscription.settle(self.generation, lambda ch: ch.basic_ack(self._tag))


class RabbitSubscription:
    def __init__(
        self,
        host: _Host,
        queue_name: str,
        handler: Handler,
        *,
        prefetch: int,
        parameters: pika.ConnectionParameters,
        name: str,
        idle: Callable[[], None] | None = None,
        prepare: Callable[[BlockingChannel], None] | None = None,
        inline: bool = False,
    ) -> None:
        self.host = host
        self._inline = inline
        self._prepare = prepare
        self.queue = queue_name
        self._handler = handler
        self._prefetch = max(1, prefetch)
        self._parameters = parameters
        self._name = name
        self._idle = idle
        self._work: queue.SimpleQueue[RabbitDelivery | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._refused: BaseException | None = None  # the broker refused the first consume
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._generation = 0
        self._broker_cancelled = False
        self._io = threading.Thread(target=self._run_io, name=f"{name}-io", daemon=True)
        # As many handlers run at once as messages may be unacked: ``prefetch`` (inline: none).
        self._workers = [
            threading.Thread(target=self._run_worker, name=f"{name}-work{i}", daemon=True)
            for i in range(0 if inline else self._prefetch)
        ]

    @property
    def active(self) -> bool:
        return not self._stopping.is_set()

    @property
    def connected(self) -> bool:
        """Consuming on an open connection now (no I/O)."""
        with self._lock:
            connection = self._connection
        return connection is not None and connection.is_open and self._ready.is_set()

    def start(self, *, timeout_s: float) -> None:
        """Start the threads; return once the consumer is registered with the broker."""
        self._io.start()
        for worker in self._workers:
            worker.start()
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(_POLL_S):
            if self._refused is not None or time.monotonic() > deadline:
                refused = self._refused
                self.cancel()
                with broker_errors(f"consume from {self.queue}"):
                    raise refused or pika.exceptions.AMQPConnectionError("no connection")

    def cancel(self) -> None:
        self._stopping.set()
        for _ in self._workers:
            self._work.put(None)
        current = threading.current_thread()
        for thread in (self._io, *self._workers):
            if thread is not current and thread.ident is not None:
                thread.join(_STOP_GRACE_S + 5)

    def is_current(self, generation: int) -> bool:
        with self._lock:
            return generation == self._generation and self._connection is not None

    def settle(self, generation: int, operation: Callable[[BlockingChannel], None]) -> None:
        """Run ``operation`` on the channel ``generation`` was delivered on, on the I/O thread;
        do nothing if that channel is gone (the broker redelivers)."""
        with self._lock:
            connection, channel = self._connection, self._channel
            if generation != self._generation or connection is None or channel is None:
                log.debug("%s: settling a delivery of a lost connection: skipped", self._name)
                return
        done = threading.Event()

        def run() -> None:
            try:
                if channel.is_open and self.is_current(generation):
                    operation(channel)
            except (pika.exceptions.AMQPError, OSError):
                log.warning("%s: could not settle a delivery", self._name, exc_info=True)
            finally:
                done.set()

        if threading.current_thread() is self._io:
            run()
            return
        try:
            connection.add_callback_threadsafe(run)
        except (pika.exceptions.AMQPError, OSError):
            return  # closed meanwhile: the broker redelivers
        done.wait(_SETTLE_TIMEOUT_S)

    # -- I/O thread -------------------------------------------------------------------------------

    def _run_io(self) -> None:
        reconnecting(self._session, self._stopping, name=self._name)

    def _session(self) -> None:
        connection = pika.BlockingConnection(self._parameters)
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=self._prefetch)
            channel.add_on_cancel_callback(self._on_broker_cancel)
            if self._prepare is not None:
                self._prepare(channel)
            with self._lock:
                self._generation += 1
                self._connection, self._channel = connection, channel
                generation = self._generation
            try:
                tag = channel.basic_consume(
                    self.queue, functools.partial(self._on_message, generation)
                )
            except pika.exceptions.ChannelClosedByBroker as exc:
                if not self._ready.is_set():
                    self._refused = exc
                    self._stopping.set()
                raise
            self._ready.set()
            self._broker_cancelled = False
            idle_at = time.monotonic() + _POLL_S
            while not self._stopping.is_set() and not self._broker_cancelled:
                connection.process_data_events(time_limit=_POLL_S)
                if self._inline and self._idle is not None and time.monotonic() >= idle_at:
                    idle_at = time.monotonic() + _POLL_S
                    self._call_idle()
            if self._stopping.is_set():
                channel.basic_cancel(tag)
                deadline = time.monotonic() + _STOP_GRACE_S
                while self._working() and time.monotonic() < deadline:
                    connection.process_data_events(time_limit=0.02)
        finally:
            with self._lock:
                self._connection = self._channel = None
            if connection.is_open:
                try:
                    connection.close()
                except (pika.exceptions.AMQPError, OSError):
                    log.debug("%s: connection did not close cleanly", self._name, exc_info=True)

    def _working(self) -> bool:
        current = threading.current_thread()
        return any(w.is_alive() for w in self._workers if w is not current)

    def _on_broker_cancel(self, _frame: object) -> None:
        log.warning("%s: RabbitMQ cancelled the consumer (queue deleted?)", self._name)
        self._broker_cancelled = True

    def _on_message(
        self,
        generation: int,
        _channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        delivery = RabbitDelivery(self, generation, method, properties, body)
        if not self._inline:
            self._work.put(delivery)
        elif not self._stopping.is_set():  # else left unacked: RabbitMQ requeues it
            self._deliver(delivery)

    # -- worker thread ----------------------------------------------------------------------------

    def _run_worker(self) -> None:
        while True:
            try:
                delivery = self._work.get(timeout=_POLL_S)
            except queue.Empty:
                if self._idle is not None and not self._stopping.is_set():
                    self._call_idle()
                continue
            if delivery is None:
                return
            if self._stopping.is_set() or not self.is_current(delivery.generation):
                continue  # left unacked: RabbitMQ requeues it
            self._deliver(delivery)

    def _call_idle(self) -> None:
        assert self._idle is not None
        try:
            self._idle()
        except Exception:
            log.exception("%s: idle task failed", self._name)

    def _deliver(self, delivery: RabbitDelivery) -> None:
        message = delivery.message
        try:
            if delivery.publish_id is not None and self.host.forwarded.seen(delivery.publish_id):
                # forwarded already, its ack lost with the connection: the copy is the live one
                log.info("%s: %s was forwarded already; this copy is dropped",
                         self._name, message.message_id)
                delivery.ack()
                return
            if message.expires_at is not None and message.expires_at <= self.host.now():
                delivery.expire()
                return
            self._handler(delivery)
        except BusUnavailable:
            log.warning(
                "%s: could not settle %s; it will be delivered again",
                self._name,
                message.message_id,
                exc_info=True,
            )
        except Exception as exc:
            log.exception("%s: handler failed on %s", self._name, message.message_id)
            if not delivery.settled:
                try:
                    delivery.dead_letter(f"internal-error: {type(exc).__name__}")
                except BusError:
                    log.warning("%s: could not dead-letter %s", self._name, message.message_id)
