"""Rate limits per client member: a token bucket each, at the gateway (``members.X.rate_limit``).

A member's bucket holds up to ``burst`` tokens and gains ``per_second`` of them each second; a
request takes one, a bundle of N parts N (``cost``: taken whenever one token is there, so the
bucket may go into debt and the next requests wait it off; a bundle larger than the burst is
never refused for good). An empty bucket refuses with ``RateLimited`` (429) and says when the next
token comes (``Retry-After``, whole seconds rounded up). Buckets live in the gateway process:
with several gateway nodes each enforces the limit on its own (a member gets up to N times it
across N nodes). The clock is passed in, so tests need no real time.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from bus.config.settings import MemberSettings, RateLimitSettings
from bus.core.errors import RateLimited

__all__ = ["RateLimits", "TokenBucket"]


class TokenBucket:
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
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= cost
                return 0.0
            return (1.0 - self._tokens) / self.rate


class RateLimits:
    """The buckets of the members that have a ``rate_limit``."""

    def __init__(
        self, members: dict[str, MemberSettings], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._buckets = {
            code: TokenBucket(m.rate_limit, clock=clock)
            for code, m in members.items()
            if m.rate_limit is not None
        }

    def check(self, member: str, cost: float = 1.0) -> None:
        """Take ``cost`` requests' tokens of ``member``; ``RateLimited`` when none is left."""
        bucket = self._buckets.get(member)
        if bucket is None:
            return
        wait = bucket.take(cost)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise RateLimited(
                f"{member!r} is over its rate limit ({bucket.rate:g}/s, burst "
                f"{bucket.burst:g}); retry after {retry} s",
                retry_after_s=retry,
                client=member,
            )
