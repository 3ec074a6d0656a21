"""Rate limits per client member: a token bucket each, at the gateway (``members.X.rate_limit``).

A member's bucket holds up to ``burst`` tokens and gains ``per_second`` of them each second; a
request takes one, a bundle of N parts N (``cost``: taken whenever one token is there, so the
bucket may go into debt and the next requests wait it off; a bundle larger than the burst is
never refused for good). An empty bucket refuses with ``RateLimited`` (429) and says when the next
token comes (``Retry-After``, whole seconds rounded up).

Buckets live in the node state (``bus.state``, bucket ``rate/<member>``), each taken from in one
atomic step: with a shared PostgreSQL state, a member gets its limit across all the gateway
nodes together, not once per node; with the default SQLite state, per machine. The state's clock
is the time, so tests need no real time.

``TokenBucket`` is the same bucket in one process's memory, for what is counted per process (the
gateway's per-source throttles, ``bus.gateway.throttle``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from bus.config.settings import MemberSettings, RateLimitSettings
from bus.core.errors import RateLimited
from bus.state import NodeState
from bus.state.base import take_tokens

__all__ = ["RateLimits", "TokenBucket"]


class TokenBucket:
    """A token bucket in this process's memory (``take_tokens``), safe across threads."""

    def __init__(
        self, settings: RateLimitSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = settings.per_second
        self.burst = float(settings.burst)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()
        self._lock = threading.Lock()

    def take(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens: 0.0 if there was one, else the seconds until there is one."""
        with self._lock:
            now = self._clock()
            self._tokens, wait = take_tokens(
                self._tokens, now - self._at, cost, rate=self.rate, burst=self.burst
            )
            self._at = now
            return wait


class RateLimits:
    """The buckets of the members that have a ``rate_limit``."""

    def __init__(self, members: dict[str, MemberSettings], state: NodeState) -> None:
        self._state = state
        self._limits: dict[str, RateLimitSettings] = {
            code: m.rate_limit for code, m in members.items() if m.rate_limit is not None
        }

    def applies(self, member: str) -> bool:
        """Whether ``member`` has a rate limit (``check`` asks the node state only then)."""
        return member in self._limits

    def check(self, member: str, cost: float = 1.0) -> None:
        """Take ``cost`` requests' tokens of ``member``; ``RateLimited`` when none is left."""
        limit = self._limits.get(member)
        if limit is None:
            return
        wait = self._state.take(
            f"rate/{member}", cost, rate=limit.per_second, burst=float(limit.burst)
        )
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise RateLimited(
                f"{member!r} is over its rate limit ({limit.per_second:g}/s, burst "
                f"{limit.burst}); retry after {retry} s",
                retry_after_s=retry,
                client=member,
            )
