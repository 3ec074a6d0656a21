"""A doorbell between processes sharing one embedded queue file: "look at this queue now".

Within one process a publish wakes that process's consumers at once; a consumer in another
process finds the row only when it next polls (``poll_interval_s``). That wait is what a reply
would pay when the worker that answered a request is not the one waiting for it (the workers of
one node, ``run_bus.py serve --workers N``, share the file). So the one instance consuming a
reply queue listens on a doorbell for it, and whoever publishes to that queue from elsewhere
rings it after the commit.

A doorbell is a Unix datagram socket in Linux's abstract namespace, named after the file's real
path and the queue (nothing on disk, gone with the process). Ringing is a best-effort,
non-blocking ``sendto`` of one byte: nobody listening, or a full socket buffer, is ignored —
polling remains the guarantee, the bell only shortens the wait. On other systems there is no
doorbell and polling alone does the work.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable

__all__ = ["Doorbell", "Listener"]

log = logging.getLogger("bus.transport.embedded")

_SUPPORTED = sys.platform == "linux"


class Listener:
    """A thread calling ``on_ring`` for every ring until ``close``."""

    def __init__(self, sock: socket.socket, on_ring: Callable[[], None], name: str) -> None:
        self._sock = sock
        self._on_ring = on_ring
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            try:
                data = self._sock.recv(64)
            except OSError:
                return
            if not data:  # shut down
                return
            try:
                self._on_ring()
            except Exception:
                log.exception("doorbell handler failed")

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked recv
        if self._thread is not threading.current_thread():
            self._thread.join(2.0)
        self._sock.close()


class Doorbell:
    """The doorbells of the queues of one file (``path``)."""

    def __init__(self, path: str) -> None:
        self._file = os.path.realpath(path)
        self._sender: socket.socket | None = None
        self._lock = threading.Lock()

    def address(self, queue: str) -> str:
        digest = hashlib.sha256(f"{self._file}\0{queue}".encode()).hexdigest()[:40]
        return f"\0bus-embedded-{digest}"

    def listen(self, queue: str, on_ring: Callable[[], None]) -> Listener | None:
        """Listen for rings of ``queue``; None if not supported or someone else listens."""
        if not _SUPPORTED:
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(self.address(queue))
        except OSError:  # another instance (or process) listens already
            sock.close()
            return None
        return Listener(sock, on_ring, name=f"bus-embedded-bell-{queue}")

    def ring(self, queue: str) -> None:
        """Tell whoever listens for ``queue`` to look now; nobody listening is fine."""
        if not _SUPPORTED:
            return
        with self._lock:
            if self._sender is None:
                self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sender.setblocking(False)
            sender = self._sender
        with contextlib.suppress(OSError):  # nobody listens, or its buffer is full
            sender.sendto(b"\x01", self.address(queue))

    def close(self) -> None:
        with self._lock:
            if self._sender is not None:
                self._sender.close()
                self._sender = None
