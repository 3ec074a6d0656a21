"""Token buckets per member: burst, refill, Retry-After, members without a limit."""

from __future__ import annotations

import pytest

from bus.config.settings import MemberSettings, RateLimitSettings
from bus.core.errors import RateLimited
from bus.policy.ratelimit import RateLimits, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(RateLimitSettings(per_second=2, burst=3), clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)  # the next token in half a second
    clock.now += 0.5
    assert bucket.take() == 0.0
    clock.now += 60  # never more than the burst
    assert [bucket.take() for _ in range(4)][-1] > 0


def test_a_bundle_costs_its_parts_and_one_larger_than_the_burst_is_not_refused_for_good(
) -> None:
    clock = Clock()
    bucket = TokenBucket(RateLimitSettings(per_second=1, burst=3), clock=clock)
    assert bucket.take(5) == 0.0  # five parts against a burst of three: taken, into debt
    assert bucket.take() == pytest.approx(3.0)  # -2 tokens: three seconds to the next one
    clock.now += 3
    assert bucket.take(2) == 0.0 and bucket.take() == pytest.approx(2.0)


def _members(**limits: RateLimitSettings | None) -> dict[str, MemberSettings]:
    return {
        code: MemberSettings(public_key="x.pub", rate_limit=limit)  # type: ignore[arg-type]
        for code, limit in limits.items()
    }


def test_rate_limits_per_member() -> None:
    clock = Clock()
    limits = RateLimits(
        _members(portal=RateLimitSettings(per_second=0.25, burst=1), tax=None), clock=clock
    )
    limits.check("portal")
    with pytest.raises(RateLimited) as info:
        limits.check("portal")
    assert info.value.status == 429 and info.value.retry_after_s == 4
    assert info.value.client == "portal" and "0.25/s" in info.value.detail
    for _ in range(100):
        limits.check("tax")  # no limit configured
        limits.check("unknown")
    clock.now += 4
    limits.check("portal")


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        RateLimitSettings(per_second=0)
    with pytest.raises(ValueError):
        RateLimitSettings(per_second=1, burst=0)
