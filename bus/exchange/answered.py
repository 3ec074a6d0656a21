"""The replies a provider process sent, kept in memory until their requests expire.

In front of the node state's recorded answers (``bus.exchange.leases``): a copy delivered to
the process that answered it is answered again from here, without a state round trip. Keyed by
the caller (the provider uses ``<message id>/<delivery source>``), bounded to ``limit`` entries.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from bus.transport import Message

__all__ = ["Answered"]


class Answered:
    """Replies already sent, kept until their request expires (bounded)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._items: OrderedDict[str, tuple[float, Message]] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def get(self, message_id: str) -> Message | None:
        with self._lock:
            item = self._items.get(message_id)
            if item is None:
                return None
            if item[0] < time.time():
                del self._items[message_id]
                return None
            return item[1]

    def put(self, message_id: str, expires_at: float, reply: Message) -> None:
        with self._lock:
            self._items[message_id] = (expires_at, reply)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)
