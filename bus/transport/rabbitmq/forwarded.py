"""Publishes this process has forwarded (retried or dead-lettered), so a stale copy is dropped.

``Delivery.retry`` and ``dead_letter`` on RabbitMQ publish a copy (confirmed) and then ack the
original. When the connection the original came on is lost before the ack, the ack goes
nowhere and RabbitMQ delivers the original again: two live copies of one request, the forwarded
one and the redelivered original, each of which would run at the agency. Every publish carries
its own ``x-bus-id``; the original keeps its id when redelivered, the copy has a new one.

The subscription marks a delivery's id before it publishes the copy (``forwarding``) and says
how that ended (``forwarded``: confirmed; ``abandoned``: the publish failed, the original stays
the live one). A later delivery with a marked id asks ``seen``: True once its copy is confirmed
(it is dropped), False if the publish failed; while the publish is still waiting for its confirm
— the redelivery often comes during that wait, as the connection loss that drops the ack also
delays the confirm — ``seen`` waits for the outcome (at most ``wait_s``; then False: handling a
request twice is better than losing it).

Per process and bounded (``limit`` ids, each kept until its message expires, or ``keep_s`` for
one without expiry): a redelivery that reaches another process is not recognised there (the
provider's answered-request memory is what catches that).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["ForwardedCopies"]


class ForwardedCopies:
    def __init__(
        self,
        *,
        limit: int = 100_000,
        keep_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._done: OrderedDict[str, float] = OrderedDict()  # confirmed: kept until
        self._pending: dict[str, threading.Event] = {}  # publishing the copy now
        self._limit = limit
        self._keep_s = keep_s
        self._clock = clock
        self._lock = threading.Lock()

    def forwarding(self, publish_id: str) -> None:
        """The copy of the delivery published as ``publish_id`` is about to be published."""
        with self._lock:
            self._pending.setdefault(publish_id, threading.Event())

    def forwarded(self, publish_id: str, expires_at: float | None) -> None:
        """The copy is confirmed: a later delivery of ``publish_id`` is stale."""
        until = expires_at if expires_at is not None else self._clock() + self._keep_s
        with self._lock:
            self._done[publish_id] = until
            self._done.move_to_end(publish_id)
            while len(self._done) > self._limit:
                self._done.popitem(last=False)
            event = self._pending.pop(publish_id, None)
        if event is not None:
            event.set()

    def abandoned(self, publish_id: str) -> None:
        """The copy could not be published: the original is still the live one."""
        with self._lock:
            event = self._pending.pop(publish_id, None)
        if event is not None:
            event.set()

    def seen(self, publish_id: str, *, wait_s: float = 30.0) -> bool:
        """Whether a delivery published as ``publish_id`` has a confirmed copy already (waiting
        for a publish of it still in progress)."""
        with self._lock:
            event = self._pending.get(publish_id)
        if event is not None:
            event.wait(wait_s)
        with self._lock:
            until = self._done.get(publish_id)
            if until is None:
                return False
            if until < self._clock():
                del self._done[publish_id]
                return False
            return True
