"""The ``Transport`` protocol every transport implements, and what they share.

Semantics every implementation must honour (``tests/contract/test_transport.py`` checks them):

* ``publish`` returns only once the message is durable (survives the process being killed).
* Delivery is at-least-once: a message leaves its queue only when it is acked. A message that
  was delivered but not acked when its consumer died is delivered again (``redelivered=True``,
  ``attempt`` incremented).
* Per queue, messages are delivered in publish order (among those ready at the same time).
* A message whose ``expires_at`` (unix seconds) has passed is not delivered. On a reply queue
  (``is_reply_queue``: ``reply.<node>``, ``reply.<node>.async``) it is dropped, logged without
  its body: its request expired, nobody waits for the reply, and replaying it would answer no
  one. On any other queue it is moved to the dead letters with reason ``expired``; the same
  holds for ``Delivery.retry`` of a message that would expire before the delay ends.
* ``Delivery.retry(delay_s, reason)`` puts the message back to be delivered again after the delay;
  ``Delivery.dead_letter(reason)`` moves it to the dead letters with the reason.
* ``request`` publishes with ``reply_to`` set to this node's reply queue and returns a future
  that completes with the message whose ``correlation_id`` is the request's ``message_id``;
  ``reply`` sends such an answer.
* Consumers ack at one place: ``Delivery.process()`` (see there).
* The protocol has two sides: ``Messaging`` (what exchanges use) and ``TransportAdmin`` (dead
  letters and counts, for operators and metrics); ``Transport`` is both, what an implementation
  is. Diagnostics an implementation offers beyond them (``queue_depth``) are not part of it.
* ``is_connected`` answers at once, without I/O: whether the transport can move messages now
  (for readiness probes). ``stats`` counts what waits, for metrics: it may do I/O (callers
  cache it and bound its time), and raises ``BusUnavailable`` when it cannot count.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from bus.core.errors import BusError, BusUnavailable

__all__ = [
    "DeadLetter",
    "Delivery",
    "Message",
    "Messaging",
    "QueueStats",
    "Subscription",
    "Transport",
    "TransportAdmin",
    "TransportClosed",
    "TransportStats",
    "is_reply_queue",
    "reply_queue",
    "service_queue",
]

log = logging.getLogger("bus.transport")


class TransportClosed(BusUnavailable):
    code = "bus-unavailable"
    title = "Transport closed"


def service_queue(service: str) -> str:
    """The work queue of a service: ``svc.<member>.<service>.<version>``."""
    return "svc." + service.replace("/", ".")


def reply_queue(node: str) -> str:
    return f"reply.{node}"


def is_reply_queue(queue: str) -> bool:
    """Whether ``queue`` holds replies (``reply.<node>`` and ``reply.<node>.async``): expired
    messages there are dropped rather than dead-lettered."""
    return queue.startswith("reply.")


@dataclass(frozen=True, slots=True)
class Message:
    body: bytes
    message_id: str
    correlation_id: str | None = None
    reply_to: str | None = None
    expires_at: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    queue: str
    message: Message
    reason: str
    attempts: int
    failed_at: float


@dataclass(frozen=True, slots=True)
class QueueStats:
    depth: int  # messages deliverable now (not those waiting out a retry delay)
    consumers: int  # subscriptions attached (embedded: in this process; RabbitMQ: broker-wide)


@dataclass(frozen=True, slots=True)
class TransportStats:
    queues: Mapping[str, QueueStats]  # the queues asked about that exist
    dead_letters: int  # messages in the dead letters
    retrying: int  # messages waiting out a retry delay (see each transport for its scope)


class Delivery:
    """One delivered message. Subclasses implement ``ack``, ``retry`` and ``dead_letter``."""

    def __init__(self, queue: str, message: Message, *, attempt: int, redelivered: bool) -> None:
        self.queue = queue
        self.message = message
        self.attempt = attempt
        self.redelivered = redelivered
        self.settled = False

    def ack(self) -> None:
        raise NotImplementedError

    def retry(self, delay_s: float, reason: str) -> None:
        raise NotImplementedError

    def dead_letter(self, reason: str) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def process(self, *, max_attempts: int = 1, retry_delay_s: float = 1.0) -> Iterator[Delivery]:
        """The one place consumers settle a message.

        The body of the ``with`` does the work. Leaving it normally acks (unless the body
        settled the message itself); a transient ``BusError`` is retried after ``retry_delay_s``
        while ``attempt < max_attempts``; any other exception dead-letters the message with the
        error's code as reason. Exceptions are not propagated: the message is settled instead.
        """
        try:
            yield self
        except BusError as exc:
            if self.settled:
                log.warning("error after settling %s: %s", self.message.message_id, exc.code)
            elif exc.transient and self.attempt < max_attempts:
                self.retry(retry_delay_s, exc.code)
            else:
                self.dead_letter(exc.code)
        except Exception as exc:
            log.exception("consumer failed on %s", self.message.message_id)
            if not self.settled:
                self.dead_letter(f"internal-error: {type(exc).__name__}")
        else:
            if not self.settled:
                self.ack()


Handler = Callable[[Delivery], None]


class Subscription(Protocol):
    def cancel(self) -> None: ...


@runtime_checkable
class Messaging(Protocol):
    """The messaging side: what the exchange needs (publish, consume, request and reply)."""

    node: str
    replies_may_block: bool
    """Whether the thread that completes a ``request``'s future may be kept a while (a worker of
    the transport, not an I/O thread): then ``Exchanger.ask`` verifies and records the answer
    there; else it hands that work to the event loop's executor."""

    def declare(self, queue: str) -> None:
        """Create ``queue`` if it does not exist (idempotent)."""
        ...

    def publish(self, queue: str, message: Message, *, timeout_s: float | None = None) -> None:
        """Put ``message`` on ``queue`` durably; ``BusUnavailable`` if the transport has not
        taken it within ``timeout_s`` (default: the transport's own), and then it never will."""
        ...

    def consume(self, queue: str, handler: Handler, *, prefetch: int = 8) -> Subscription:
        """Call ``handler`` for each message of ``queue`` on background thread(s)."""
        ...

    def request(self, queue: str, message: Message) -> Future[Message]: ...

    def reply(self, request: Message, message: Message) -> None: ...

    def is_connected(self) -> bool:
        """Whether messages can move now; answered from local state, without I/O."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class TransportAdmin(Protocol):
    """The operators' side: dead letters (``run_bus.py dlq``) and what waits (metrics)."""

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    def replay(self, dead_letter_id: str) -> Message: ...

    def purge_dead_letters(self, dead_letter_id: str | None = None) -> int: ...

    def stats(self, queues: Sequence[str]) -> TransportStats:
        """Depth and consumers of ``queues``, dead letters and retrying messages (for metrics)."""
        ...


@runtime_checkable
class Transport(Messaging, TransportAdmin, Protocol):
    """A transport implementation: both sides (``open_transport`` returns one)."""
