"""Publishing with confirms for ``RabbitTransport``: one connection, one I/O thread, many callers.

``ConfirmingPublisher.submit`` may be called from any thread. It queues the message and
returns a future; the I/O thread (a pika ``SelectConnection``, which unlike a
``BlockingConnection`` does not wait for each confirm) publishes everything queued on a channel
in confirm mode and completes the futures as the broker's acks arrive: one ``Basic.Ack`` with
``multiple`` settles a whole batch, so concurrent publishers share round trips.

A message counts as published only once the broker confirmed it. Messages that were sent but
not confirmed when the connection dropped are sent again, in their order, once the publisher
has reconnected (with backoff): a confirm may thus be followed by a duplicate, never by a loss.
A mandatory message that no queue takes (``Basic.Return``) fails its future; so does a
``Basic.Nack``.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.channel
import pika.exceptions
import pika.frame
import pika.spec
from pika.adapters.select_connection import SelectConnection

from bus.core.errors import BusUnavailable
from bus.transport.base import TransportClosed
from bus.transport.rabbitmq.topology import H_ID, reconnecting

__all__ = ["ConfirmingPublisher", "Unroutable"]

log = logging.getLogger("bus.transport.rabbitmq")

# A message that made the channel fail this many times is given up on (e.g. its exchange was
# deleted under us) rather than resent for ever.
_MAX_SENDS = 5


class Unroutable(BusUnavailable):
    """No queue is bound for the routing key: the queue was never declared or was deleted."""

    title = "No queue for this message"


@dataclass(eq=False, slots=True)
class _Pending:
    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties
    future: Future[None] = field(default_factory=Future)
    returned: str | None = None
    sends: int = 0

    @property
    def id(self) -> str:
        return str((self.properties.headers or {}).get(H_ID, ""))

    def settle(self, error: BaseException | None) -> None:
        try:
            if error is None:
                self.future.set_result(None)
            else:
                self.future.set_exception(error)
        except InvalidStateError:  # the caller gave up (cancelled) meanwhile
            pass


class ConfirmingPublisher:
    def __init__(self, parameters: pika.ConnectionParameters, *, name: str) -> None:
        self._parameters = parameters
        self._name = name
        self._lock = threading.Lock()
        self._outbox: deque[_Pending] = deque()  # guarded by _lock
        self._connection: SelectConnection | None = None  # guarded by _lock
        # Owned by the I/O thread:
        self._channel: pika.channel.Channel | None = None
        self._unconfirmed: dict[int, _Pending] = {}
        self._by_id: dict[str, _Pending] = {}
        self._next_tag = 0
        self._failure: BaseException | None = None
        self._stopping = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"{name}-io", daemon=True)
        self._thread.start()

    # -- any thread -------------------------------------------------------------------------------

    def submit(
        self, exchange: str, routing_key: str, body: bytes, properties: pika.BasicProperties
    ) -> Future[None]:
        pending = _Pending(exchange, routing_key, body, properties)
        with self._lock:
            if self._closed:
                raise TransportClosed("the transport is closed")
            self._outbox.append(pending)
            connection = self._connection
        if connection is not None:
            self._wake(connection)
        return pending.future

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.BasicProperties,
        *,
        timeout_s: float,
    ) -> None:
        """Publish and wait for the broker's confirm."""
        self.wait(self.submit(exchange, routing_key, body, properties), timeout_s=timeout_s)

    @property
    def connected(self) -> bool:
        """A connection is open and its channel confirms publishes (no I/O)."""
        with self._lock:
            connection = self._connection
        return connection is not None and connection.is_open and self._channel is not None

    @staticmethod
    def wait(future: Future[None], *, timeout_s: float) -> None:
        try:
            future.result(timeout=timeout_s)
        except TimeoutError:
            future.cancel()  # not sent yet: it never will be; sent: a confirm no one awaits
            raise BusUnavailable(
                f"RabbitMQ did not confirm a publish within {timeout_s}s"
            ) from None

    def close(self, *, timeout_s: float = 5.0) -> None:
        """Wait (up to ``timeout_s``) for queued publishes, then disconnect. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._busy():
            time.sleep(0.01)
        self._stopping.set()
        with self._lock:
            connection = self._connection
        if connection is not None:
            self._call_soon(connection, self._disconnect)
        self._thread.join(timeout_s + self._parameters.socket_timeout)
        left = [*self._outbox, *self._unconfirmed.values()]
        self._outbox.clear()
        self._unconfirmed.clear()
        for pending in left:
            pending.settle(TransportClosed("the transport closed before the broker confirmed"))

    # -- internals --------------------------------------------------------------------------------

    def _busy(self) -> bool:
        with self._lock:
            if not self._outbox and not self._unconfirmed:
                return False
            return self._connection is not None  # no point waiting while disconnected

    def _wake(self, connection: SelectConnection) -> None:
        self._call_soon(connection, self._flush)

    @staticmethod
    def _call_soon(connection: SelectConnection, callback: Any) -> None:
        try:
            connection.ioloop.add_callback_threadsafe(callback)
        except Exception:  # the loop is closing: the next session picks the work up
            log.debug("publisher loop not accepting callbacks", exc_info=True)

    def _run(self) -> None:
        reconnecting(self._session, self._stopping, name=self._name)

    def _session(self) -> None:
        connection = SelectConnection(
            self._parameters,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_failed,
            on_close_callback=self._on_connection_closed,
        )
        self._failure = None
        with self._lock:
            self._connection = connection
        try:
            connection.ioloop.start()
        finally:
            with self._lock:
                self._connection = None
                # Sent but unconfirmed go first, in their original order, then the rest.
                resend = [self._unconfirmed[tag] for tag in sorted(self._unconfirmed)]
                self._unconfirmed.clear()
                self._by_id.clear()
                for pending in reversed(resend):
                    self._outbox.appendleft(pending)
            self._channel = None
            connection.ioloop.close()
        if self._failure is not None:
            raise self._failure

    def _on_connection_open(self, connection: pika.BaseConnection) -> None:
        if self._stopping.is_set():  # close() ran while this connection was being opened
            connection.close()
            return
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_failed(self, connection: pika.BaseConnection, error: BaseException) -> None:
        self._failure = error
        connection.ioloop.stop()

    def _on_connection_closed(self, connection: pika.BaseConnection, reason: BaseException) -> None:
        if not self._stopping.is_set():
            self._failure = reason
        connection.ioloop.stop()

    def _disconnect(self) -> None:
        # Only an open connection is closed here: closing one that is still opening trips an
        # assertion inside pika 1.3/1.4; an opening one sees ``_stopping`` once it is open.
        with self._lock:
            connection = self._connection
        if connection is not None and connection.is_open:
            connection.close()

    def _on_channel_open(self, channel: pika.channel.Channel) -> None:
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)

        def confirming(_frame: pika.frame.Method) -> None:
            self._channel = channel
            self._next_tag = 0
            self._flush()

        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=confirming)

    def _on_channel_closed(self, channel: pika.channel.Channel, reason: BaseException) -> None:
        # A channel error (e.g. a deleted exchange) ends the session; unconfirmed are resent.
        self._channel = None
        for pending in self._unconfirmed.values():
            if pending.sends >= _MAX_SENDS:
                pending.settle(BusUnavailable(f"RabbitMQ refused a publish: {reason}"))
        self._unconfirmed = {t: p for t, p in self._unconfirmed.items() if p.sends < _MAX_SENDS}
        if not self._stopping.is_set():
            self._failure = reason
        self._disconnect()

    def _flush(self) -> None:
        channel = self._channel
        if channel is None or not channel.is_open:
            return
        while True:
            with self._lock:
                if not self._outbox:
                    return
                pending = self._outbox.popleft()
            if pending.future.cancelled():
                continue
            try:
                channel.basic_publish(
                    pending.exchange,
                    pending.routing_key,
                    pending.body,
                    pending.properties,
                    mandatory=True,
                )
            except (
                pika.exceptions.ChannelWrongStateError,
                pika.exceptions.ConnectionWrongStateError,
            ):  # the channel is closing: the next session resends it
                with self._lock:
                    self._outbox.appendleft(pending)
                return
            except Exception as exc:  # e.g. a header pika cannot encode
                pending.settle(BusUnavailable(f"cannot publish: {type(exc).__name__}: {exc}"))
                continue
            self._next_tag += 1
            pending.sends += 1
            self._unconfirmed[self._next_tag] = pending
            self._by_id[pending.id] = pending

    def _on_return(
        self,
        _channel: pika.channel.Channel,
        method: pika.spec.Basic.Return,
        properties: pika.BasicProperties,
        _body: bytes,
    ) -> None:
        # RabbitMQ sends the return before the confirm of the same message.
        pending = self._by_id.get(str((properties.headers or {}).get(H_ID, "")))
        if pending is not None:
            pending.returned = f"{method.reply_text} for {method.exchange}/{method.routing_key}"

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        tags = (
            list(itertools.takewhile(lambda t: t <= method.delivery_tag, self._unconfirmed))
            if method.multiple
            else [method.delivery_tag]
        )
        for tag in tags:
            pending = self._unconfirmed.pop(tag, None)
            if pending is None:
                continue
            self._by_id.pop(pending.id, None)
            if not acked:
                pending.settle(BusUnavailable("RabbitMQ refused a publish (nack)"))
            elif pending.returned is not None:
                pending.settle(Unroutable(f"RabbitMQ: unroutable: {pending.returned}"))
            else:
                pending.settle(None)
