"""The embedded transport: the ``Transport`` on durable queues in one SQLite file.

The file, and every read and write of it, is ``bus.transport.embedded.queue_file.QueueFile``
(durability, claims, in-flight rows handed back, dead letters; its SQL in ``sql``). This
module moves messages through it: who claims, who is woken, and how requests meet replies.

Guarantees (besides the file's):

* ``publish`` returns after its COMMIT.
* A message its handler left unsettled stays in flight until this transport closes, which hands
  it back (``redelivered``).
* ``consume`` runs ``prefetch`` worker threads, woken at once by a publish in this process; one
  idle worker per queue polls every ``poll_interval_s`` for other processes' writes and for
  retries that came due.
* A consumer of a reply queue listens on its doorbell (``bus.transport.embedded.doorbell``),
  and a publish to a reply queue consumed elsewhere rings it: a reply written by another
  process (another worker of the node) is taken at once rather than at the next poll.
* ``request`` never touches the file in the caller's thread (the gateway's event loop): a
  request to a queue this instance consumes is handed to those consumers, and the one that
  takes it writes it already claimed (one insert instead of an insert and a claim; it then
  waits for no other process, and a crash loses only a request whose asker died with it);
  any other goes to the outbox thread (``bus.transport.embedded.outbox``, group commit).
  Either way a write that fails fails the request's future with the error.
* A ``reply`` made while handling its request (the provider worker's) is written in the same
  transaction as that delivery's settling — the ack, usually — right after the handler settles
  it (or, if the handler leaves it unsettled, when the handler returns).
* ``request`` waits on ``reply.<node>`` through one reply consumer; a ``reply`` to a request
  of this same instance that still waits skips the queue and goes to the waiter directly
  (nobody else would read that row). The waiters are ``bus.transport.replies.PendingReplies``,
  as RabbitMQ's: one abandoned by its caller fails with ``DeadlineExceeded`` once its request's
  ``expires_at`` passed (checked at the next ``request``); ``close`` fails the rest with
  ``TransportClosed``.
* ``stats``: the file's counts (``QueueFile.counts``); consumers are this process's
  subscriptions (the file's owner).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from bus.core.errors import BusError, BusUnavailable
from bus.core.local_db import Sync
from bus.transport.base import (
    DeadLetter,
    Delivery,
    Handler,
    Message,
    QueueStats,
    TransportClosed,
    TransportStats,
    is_reply_queue,
    reply_queue,
)
from bus.transport.embedded.doorbell import Doorbell, Listener
from bus.transport.embedded.outbox import Outbox, Outgoing
from bus.transport.embedded.queue_file import QueueFile, Settling
from bus.transport.replies import PendingReplies, complete

__all__ = ["EmbeddedTransport"]

log = logging.getLogger("bus.transport.embedded")

_SYNC: dict[str, Sync] = {"normal": "NORMAL", "full": "FULL"}
_BACKSTOP_S = 1.0  # longest sleep of a worker without poll duty


class _EmbeddedDelivery(Delivery):
    transport: EmbeddedTransport  # set by the claim, with the row's ``seq``
    seq: int
    reply: tuple[str, Message] | None = None  # written with the settling (``reply``)

    def ack(self) -> None:
        self.transport._settle(self, "ack")

    def retry(self, delay_s: float, reason: str) -> None:
        self.transport._settle(self, "retry", delay_s=delay_s, reason=reason)

    def dead_letter(self, reason: str) -> None:
        self.transport._settle(self, "dead", reason=reason)


class _Signal:
    """Wakes the workers of one queue; ``version`` changes whenever there may be new work."""

    def __init__(self, lock: threading.Lock) -> None:
        self.cond = threading.Condition(lock)
        self.version = 0
        self.poller = False  # one idle worker polls for other processes' writes
        self.consumers = 0  # live subscriptions of this instance
        self.direct: collections.deque[tuple[Message, Future[Message]]] = collections.deque()


class _Subscription:
    def __init__(self, signal: _Signal, on_cancel: Callable[[_Subscription], None]) -> None:
        self.signal = signal
        self.stopped = False
        self.threads: list[threading.Thread] = []
        self.bell: Listener | None = None
        self._on_cancel = on_cancel

    def cancel(self) -> None:
        with self.signal.cond:
            self.stopped = True
            self.signal.cond.notify_all()
        if self.bell is not None:
            self.bell.close()
            self.bell = None
        me = threading.current_thread()
        for thread in self.threads:
            if thread is not me:
                thread.join()
        self._on_cancel(self)


class EmbeddedTransport:
    """The ``Transport`` on one SQLite file; see the module docstring for schema and guarantees."""

    replies_may_block = True  # futures are completed by its worker threads (or the caller's)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        node: str,
        durable_sync: str = "normal",
        poll_interval_s: float = 0.05,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if durable_sync not in _SYNC:
            raise ValueError(f"durable_sync must be one of {sorted(_SYNC)}, not {durable_sync!r}")
        self.node = node
        self.path = os.fspath(path)
        self._poll_s = poll_interval_s
        self._reply_queue = reply_queue(node)
        self._file = QueueFile(self.path, node=node, synchronous=_SYNC[durable_sync], clock=clock)
        self._wake_lock = threading.Lock()
        self._signals: dict[str, _Signal] = {}
        self._subs: set[_Subscription] = set()
        self._handling = threading.local()  # .delivery: the one this consumer thread handles
        self._replies_lock = threading.Lock()  # guards _reply_sub
        self._waiting = PendingReplies(clock)
        self._reply_sub: _Subscription | None = None
        self._bell = Doorbell(self.path)
        self._outbox = Outbox(self._write_requests, name=f"bus-embedded-outbox-{node}")
        self._closing = False

    def _check_open(self) -> None:
        if self._closing or not self._file.is_open:
            raise TransportClosed(f"embedded transport {self.path} is closed")

    def declare(self, queue: str) -> None:
        """Nothing to do: embedded queues exist as soon as a message names them."""
        self._check_open()

    def publish(self, queue: str, message: Message, *, timeout_s: float | None = None) -> None:
        # a local write: it takes as long as the file lock, bounded by SQLite's busy timeout
        self._file.insert(queue, message)
        self._published(queue)

    def _published(self, queue: str) -> None:
        """Wake whoever consumes ``queue``: this instance's consumers, or another's doorbell."""
        self._notify(queue)
        if is_reply_queue(queue) and queue not in self._signals:  # consumed elsewhere
            self._bell.ring(queue)

    def _publish_reply(self, d: _EmbeddedDelivery) -> None:
        reply, d.reply = d.reply, None
        if reply is not None:
            try:
                self.publish(*reply)
            except BusError:
                log.exception("the reply to %s could not be written", d.message.message_id)

    def _signal(self, queue: str) -> _Signal:
        with self._wake_lock:
            return self._signals.setdefault(queue, _Signal(self._wake_lock))

    def _notify(self, queue: str) -> None:
        sig = self._signals.get(queue)
        if sig is not None:
            with sig.cond:
                sig.version += 1
                sig.cond.notify()

    def consume(self, queue: str, handler: Handler, *, prefetch: int = 8) -> _Subscription:
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self._check_open()
        sub = _Subscription(self._signal(queue), self._unsubscribed)
        with sub.signal.cond:
            sub.signal.consumers += 1
        if is_reply_queue(queue):
            sub.bell = self._bell.listen(queue, lambda: self._notify(queue))
        self._subs.add(sub)
        for i in range(prefetch):
            thread = threading.Thread(
                target=self._work,
                args=(queue, handler, sub),
                name=f"bus-embedded-{queue}-{i}",
                daemon=True,
            )
            sub.threads.append(thread)
            thread.start()
        return sub

    def _unsubscribed(self, sub: _Subscription) -> None:
        self._subs.discard(sub)
        with sub.signal.cond:
            sub.signal.consumers -= 1

    def _work(self, queue: str, handler: Handler, sub: _Subscription) -> None:
        sig = sub.signal
        while not sub.stopped:
            seen = sig.version
            try:
                delivery, more = self._take_direct(queue, sig)
                if delivery is None:
                    delivery, more = self._claim(queue)
            except TransportClosed:
                return
            except BusUnavailable:
                log.exception("claiming from %s failed", queue)
                delivery, more = None, False
            if delivery is None:
                self._idle(sub, seen)
                continue
            if more:  # a sibling takes the next message
                self._notify(queue)
            elif not sig.poller:  # a sibling takes the poll duty, without claiming now
                with sig.cond:
                    sig.cond.notify()
            self._handling.delivery = delivery
            try:
                handler(delivery)
            except Exception:
                log.exception("handler failed outside process() on %s", delivery.message.message_id)
            finally:
                self._handling.delivery = None
            if delivery.reply is not None:  # replied but never settled: the reply goes now
                self._publish_reply(delivery)
            if not delivery.settled:  # handed back when the transport closes
                log.warning("%s left in flight by its handler", delivery.message.message_id)
            if not more:  # nothing else was ready: idle, unless something came meanwhile
                self._idle(sub, seen)

    def _idle(self, sub: _Subscription, seen: int) -> None:
        sig = sub.signal
        with sig.cond:
            while True:
                if sub.stopped or sig.version != seen:
                    return
                if not sig.poller:
                    break
                if not sig.cond.wait(_BACKSTOP_S):
                    return  # the backstop: claim
                # woken: new work (version changed), or the poll duty handed over
            sig.poller = True
            try:
                sig.cond.wait(self._poll_s)
            finally:
                sig.poller = False

    def _take_direct(self, queue: str, sig: _Signal) -> tuple[_EmbeddedDelivery | None, bool]:
        """A request of this instance handed straight to this queue's consumers (``request``):
        written already claimed — in flight, by this instance, first attempt — in one insert,
        instead of an insert by the asker and a claim by the consumer."""
        with sig.cond:
            if not sig.direct:
                return None, False
            message, future = sig.direct.popleft()
            more = bool(sig.direct)
        try:
            seq = self._file.insert_claimed(queue, message)
        except BusError as exc:  # the asker is told, as by a failed publish
            complete(future, error=exc)
            return None, more
        d = _EmbeddedDelivery(queue, message, attempt=1, redelivered=False)
        d.transport, d.seq = self, seq
        return d, more

    def _claim(self, queue: str) -> tuple[_EmbeddedDelivery | None, bool]:
        """Claim the next deliverable message of ``queue``; also say whether more are ready."""
        claimed, more = self._file.claim(queue)
        if claimed is None:
            return None, False
        d = _EmbeddedDelivery(
            queue, claimed.message, attempt=claimed.attempt, redelivered=claimed.redelivered
        )
        d.transport, d.seq = self, claimed.seq
        return d, more

    def _settle(
        self, d: _EmbeddedDelivery, how: Settling, *, delay_s: float = 0.0, reason: str = ""
    ) -> None:
        if d.settled:
            raise RuntimeError(f"message {d.message.message_id} is already settled")
        reply, d.reply = d.reply, None
        self._file.settle(d.seq, how, delay_s=delay_s, reason=reason, reply=reply)
        d.settled = True
        if reply is not None:
            self._published(reply[0])
        if how != "ack":
            log.debug("%s %s: %s", how, d.message.message_id, reason)
        if how == "retry" and delay_s <= 0:
            self._notify(d.queue)

    def request(self, queue: str, message: Message) -> Future[Message]:
        with self._replies_lock:
            self._check_open()
            if self._reply_sub is None:
                self._reply_sub = self.consume(
                    self._reply_queue, self._waiting.answer, prefetch=1
                )
        self._waiting.expire()  # the requests abandoned by their callers
        future: Future[Message] = Future()
        self._waiting.add(message.message_id, future, message.expires_at)
        outgoing = dataclasses.replace(message, reply_to=self._reply_queue)
        try:
            self._check_open()  # closed meanwhile: fail_all may have missed this one
            if not self._hand_to_consumer(queue, outgoing, future):
                self._outbox.put((queue, outgoing, future))
        except BaseException:
            future.cancel()
            raise
        return future

    def _hand_to_consumer(self, queue: str, message: Message, future: Future[Message]) -> bool:
        """Give a request to this instance's consumers of ``queue``, if it has any."""
        sig = self._signals.get(queue)
        if sig is None:
            return False
        with sig.cond:
            if sig.consumers <= 0:
                return False
            sig.direct.append((message, future))
            sig.version += 1
            sig.cond.notify()
        return True

    def _write_requests(self, batch: Sequence[Outgoing]) -> None:
        """The outbox's writer: the requests of ``batch`` in one transaction."""
        self._file.insert_many((q, m) for q, m, _ in batch)
        for q in {q for q, _, _ in batch}:
            self._notify(q)

    def reply(self, request: Message, message: Message) -> None:
        if not request.reply_to:
            raise ValueError(f"request {request.message_id} has no reply_to")
        answer = dataclasses.replace(message, correlation_id=request.message_id)
        # A reply to a request of this instance still waiting goes to it directly: the row
        # would only be claimed and deleted by this instance's reply consumer (after a crash it
        # finds no waiter), so skipping it saves an insert, a claim, an ack and a thread hop.
        if request.reply_to == self._reply_queue and self._waiting.hand_over(answer):
            return
        # A reply from inside the handler of that request is written with its settling (ack,
        # retry or dead letter) in one transaction, the reply first; it is not acked before.
        handling: _EmbeddedDelivery | None = getattr(self._handling, "delivery", None)
        if (
            handling is not None
            and handling.message is request
            and not handling.settled
            and handling.reply is None
        ):
            handling.reply = (request.reply_to, answer)
            return
        self.publish(request.reply_to, answer)

    def queue_depth(self, queue: str) -> int:
        """Messages of ``queue`` waiting to be delivered (ready now or after a retry delay)."""
        return self._file.depth(queue)

    def is_connected(self) -> bool:
        return not self._closing and self._file.is_open

    def stats(self, queues: Sequence[str]) -> TransportStats:
        """Counted in this file; consumers are this process's subscriptions (the file's owner)."""
        counts = self._file.counts()
        live = [s.signal for s in list(self._subs) if not s.stopped]
        stats = {
            q: QueueStats(counts.depths.get(q, 0), sum(sig is self._signals.get(q) for sig in live))
            for q in queues
        }
        return TransportStats(stats, counts.dead, counts.retrying)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return self._file.dead_letters(limit)

    def replay(self, dead_letter_id: str) -> Message:
        """Put a dead letter back on its queue (same message id, attempts from zero)."""
        queue, message = self._file.replay(dead_letter_id)
        self._notify(queue)
        return message

    def purge_dead_letters(self, dead_letter_id: str | None = None) -> int:
        return self._file.purge_dead_letters(dead_letter_id)

    def close(self) -> None:
        """Stop the consumers (waiting for running handlers), hand back unsettled messages."""
        with self._replies_lock:
            if self._closing:
                return
            self._closing = True
        self._outbox.close()  # what was asked before is written (or failed)
        for sub in list(self._subs):  # set ops are atomic under the GIL
            sub.cancel()
        self._file.close()
        self._bell.close()
        self._waiting.fail_all(TransportClosed("transport closed before the reply came"))

    def __enter__(self) -> EmbeddedTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
