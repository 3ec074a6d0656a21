"""Replay: envelope ids already acted on, remembered until they expire.

``ReplayGuard.admit(envelope, source)`` is called right after ``Seal.verify`` (never before: a
forged envelope must not be able to claim an id first). It remembers each envelope id until its
``expires_at``, with the *source* it came from, and refuses (``Replayed``) the same id coming
from another source within that time. Once the envelope has expired, ``Seal.verify`` refuses it
anyway, so nothing needs remembering longer.

What a source is decides what counts as a replay:

* On the provider side the source is the SHA-256 of the message body (the signed envelope,
  byte for byte) and its reply address. A transport redelivery — after a crash, a retry-queue
  delay, or an operator's ``dlq replay`` — carries the same bytes to the same reply address, so
  it is admitted and answered (from the worker's memory when it was answered already). The
  same envelope id sent back with another reply address (someone re-publishing a captured
  request to get the answer delivered to themselves), or re-signed into other bytes, is refused.
  A captured request re-published to its original reply address is admitted: it is answered
  from memory, to the original asker, who drops what it no longer waits for.
* On the client side (the exchanger, for replies) the source is the reply's signature: a
  response envelope id seen before with another signature is refused.
* At the SOAP gateway (``admit_once``) there are no redeliveries: a signed SOAP request is
  remembered by the digest of what it signed until its timestamp expires, and any second use
  is refused.

Where ids are kept: ``store`` (``SeenIds``; the node passes its ``bus.state`` store, so every
node sharing that state refuses the same replay, also after a restart) decides whether an id is
new. In front of it, a per-process memory answers for ids this process has seen already
without asking the store: the same source again is admitted, another refused. The memory is
bounded (``limit`` ids): when it is full, the ids closest to expiry are forgotten first (the
store still has them). Without a store (a guard made for one test or tool), the memory alone
decides, and an overflow weakens protection only for the envelopes about to expire.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Protocol

from bus.core.envelope import Envelope, utcnow
from bus.core.errors import Replayed

__all__ = ["ReplayGuard", "SeenIds", "delivery_source"]

log = logging.getLogger("bus.replay")


def delivery_source(body: bytes, reply_to: str | None) -> str:
    """The provider-side source of a message: its exact bytes and where answers go."""
    digest = hashlib.sha256(body)
    digest.update(b"\0" + (reply_to or "").encode())
    return digest.hexdigest()


class SeenIds(Protocol):
    """Where seen ids are decided (``bus.state.NodeState`` is one): keep ``key`` until
    ``expires_at`` with ``source``; False if it is kept already from another source."""

    def remember(self, key: str, expires_at: float, source: str) -> bool: ...


class ReplayGuard:
    """Thread-safe "seen until expiry" set of envelope ids (see the module docstring)."""

    def __init__(
        self,
        limit: int = 100_000,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        store: SeenIds | None = None,
    ) -> None:
        self._limit = limit
        self._clock = clock
        self._store = store
        self._seen: dict[str, tuple[float, str]] = {}
        self._expiry: list[tuple[float, str]] = []  # heap of (expires_at, id)
        self._lock = threading.Lock()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, envelope: Envelope, source: str) -> None:
        """Remember ``envelope.id`` from ``source``; raise ``Replayed`` if seen from another."""
        if not self._remember(envelope.id, envelope.expires_at, source):
            raise Replayed(
                f"envelope {envelope.id} was already received from another source",
                message_id=envelope.id,
                client=envelope.client,
                service=envelope.service,
            )

    def admit_once(
        self, key: str, expires_at: dt.datetime, *, client: str, service: str, what: str
    ) -> None:
        """Remember ``key`` until ``expires_at``; raise ``Replayed`` if it was seen at all
        (``what`` names the message in the refusal)."""
        if not self._remember(key, expires_at, None):
            raise Replayed(f"{what} was already received", client=client, service=service)

    def _remember(self, key: str, expires_at: dt.datetime, source: str | None) -> bool:
        """False when ``key`` is known from another source (``None``: from any source)."""
        now = self._clock().timestamp()
        expires = expires_at.timestamp()
        with self._lock:
            self._forget_until(now)
            seen = self._seen.get(key)
            if seen is not None:
                return source is not None and seen[1] == source  # a redelivery, or a replay
        if self._store is not None:
            # None: any second use is a replay, so this use gets a source nobody else has
            kept = source if source is not None else uuid.uuid4().hex
            if not self._store.remember(key, expires, kept):
                return False
        with self._lock:
            self._seen[key] = (expires, source or "")
            heapq.heappush(self._expiry, (expires, key))
            while len(self._seen) > self._limit:
                self._pop()
                self.evicted += 1
                if self._store is None and (
                    self.evicted in (1, 1000) or self.evicted % 100_000 == 0
                ):
                    log.warning("replay memory full: %d ids forgotten before expiry", self.evicted)
        return True

    def _pop(self) -> None:
        expires, message_id = heapq.heappop(self._expiry)
        seen = self._seen.get(message_id)
        if seen is not None and seen[0] == expires:
            del self._seen[message_id]

    def _forget_until(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            self._pop()
