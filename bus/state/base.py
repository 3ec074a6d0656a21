"""The ``NodeState`` protocol: what a node must share with the other nodes of its bus.

Three kinds of state, each a few atomic operations (the contract suite
``tests/contract/test_node_state.py`` runs them against both implementations):

* **seen ids** (the replay guard): ``remember(key, expires_at, source)`` keeps ``key`` until
  ``expires_at`` with the source it came from, and answers whether this use is allowed: the
  first, or again from the same source (a redelivery). Another source within that time: no.
* **leases and results** (the provider's memory of answered requests, ``Idempotency-Key``):
  ``claim`` makes the caller the one executing ``key`` until its lease ends, or says why not —
  the result is there already (``answered``), someone else's lease still runs (``busy``), the
  key was used for another request (``conflict``, by ``fingerprint``). A lease that ran out
  without a result (its holder died) is handed over (``taken-over``, with the attempt number),
  so the next holder may execute again and say so. ``settle`` stores the result (only the
  current holder can); ``release`` gives the key up unsettled (the next claim starts afresh);
  ``abandon`` ends at once the leases of a holder known to be gone (owners ``holder/…``).
* **token buckets** (rate limits): ``take`` takes tokens from a bucket and answers how long
  to wait when there were none, in one atomic step whichever node asks.

Keys are the caller's (prefixed by what they are: ``request/…``, ``idempotency/…``); results
are opaque bytes. Times are Unix seconds from the store's ``clock``. Everything expires with its
``expires_at``, and ``purge`` deletes what has. Errors are ``BusUnavailable``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = ["Claim", "ClaimState", "NodeState", "take_tokens"]

ClaimState = Literal["new", "taken-over", "answered", "busy", "conflict"]


@dataclass(frozen=True)
class Claim:
    """The answer to ``NodeState.claim``."""

    state: ClaimState
    attempt: int = 1  # executions begun under this key, this one included (new, taken-over)
    result: bytes | None = None  # answered: the stored result
    lease_until: float | None = None  # busy: when the other holder's lease ends

    @property
    def granted(self) -> bool:
        """The caller holds the lease now and executes."""
        return self.state in ("new", "taken-over")


@runtime_checkable
class NodeState(Protocol):
    """See the module docstring."""

    shown: str  # where the state is, without a password
    shared: str | None  # the PostgreSQL URL other stores of the node use too; None: local files
    clock: Callable[[], float]  # the store's time (Unix seconds)

    def remember(self, key: str, expires_at: float, source: str) -> bool:
        """Keep ``key`` until ``expires_at``; False if it is kept already from another source."""
        ...

    def claim(
        self, key: str, owner: str, *, lease_s: float, expires_at: float, fingerprint: str = ""
    ) -> Claim:
        """Hold ``key`` for ``lease_s`` seconds as ``owner``, or say why not."""
        ...

    def settle(self, key: str, owner: str, result: bytes) -> bool:
        """Keep ``result`` under ``key`` until it expires; False if ``owner`` lost the lease."""
        ...

    def release(self, key: str, owner: str) -> None:
        """Give ``key`` up without a result (the next claim executes anew)."""
        ...

    def renew(self, key: str, owner: str, *, lease_s: float) -> bool:
        """Hold ``key`` for another ``lease_s`` seconds from now (never past its expiry), if
        ``owner`` still runs it; False if not."""
        ...

    def abandon(self, holder: str) -> int:
        """End now every running lease of owners ``holder/…``, known to be gone (a node
        restarting); the next claim takes each over. How many."""
        ...

    def take(self, bucket: str, cost: float, *, rate: float, burst: float) -> float:
        """Take ``cost`` tokens if at least one is there (0.0), else the seconds until one is."""
        ...

    def purge(self) -> int:
        """Delete every seen id and result that has expired; how many."""
        ...

    def check(self) -> str:
        """Raise if the state cannot be read now (a readiness check); else a short detail."""
        ...

    def close(self) -> None: ...


def take_tokens(
    tokens: float, elapsed_s: float, cost: float, *, rate: float, burst: float
) -> tuple[float, float]:
    """One step of a token bucket: refill for ``elapsed_s`` (never backwards, at most ``burst``),
    then take ``cost`` if a whole token is there (the bucket may go into debt). Returns the
    tokens left and the seconds to wait (0.0: taken)."""
    tokens = min(burst, tokens + max(0.0, elapsed_s) * rate)
    if tokens >= 1.0:
        return tokens - cost, 0.0
    return tokens, (1.0 - tokens) / rate
