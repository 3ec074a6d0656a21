"""The embedded transport's outbox: requests written by a thread of their own, never the caller's.

``EmbeddedTransport.request`` is called on the gateway's event loop. A request that no consumer
of this process takes over (``bus.transport.embedded.transport``: the provider is another
process, or another node on the file) is put here and written by the outbox thread, so the
loop never waits for SQLite — neither for its write nor for the file lock another process
holds. What gathers while one batch commits goes in the next one, in one transaction (group
commit). A batch that cannot be written fails the futures of its requests with the error
(``BusUnavailable``; ``TransportClosed`` once the transport is closing).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from bus.core.errors import BusError
from bus.transport.base import Message, TransportClosed
from bus.transport.replies import complete

__all__ = ["Outbox", "Outgoing"]

log = logging.getLogger("bus.transport.embedded")

Outgoing = tuple[str, Message, Future[Message]]  # queue, message, the request's future
_BATCH_MAX = 64
_STOP = None


class Outbox:
    """Writes what is ``put`` with ``write(batch)`` in a daemon thread, started on first use."""

    def __init__(self, write: Callable[[Sequence[Outgoing]], None], name: str) -> None:
        self._write = write
        self._name = name
        self._queue: queue.SimpleQueue[Outgoing | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def put(self, item: Outgoing) -> None:
        with self._lock:
            if self._closed:
                raise TransportClosed("the transport is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._queue.put(item)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                self._fail_rest()
                return
            batch = [first]
            stop = False
            while len(batch) < _BATCH_MAX:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            try:
                self._write(batch)
            except BusError as exc:
                for _, _, future in batch:
                    complete(future, error=exc)
            except Exception:
                log.exception("the outbox could not write %d request(s)", len(batch))
                for _, _, future in batch:
                    complete(future, error=TransportClosed("the request could not be written"))
            if stop:
                self._fail_rest()
                return

    def _fail_rest(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                complete(item[2], error=TransportClosed("transport closed before the request"))

    def close(self) -> None:
        """Write what was put before, then stop; later ``put`` calls raise ``TransportClosed``."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)
        if thread is not threading.current_thread():
            thread.join(10.0)
