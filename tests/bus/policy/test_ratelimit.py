"""Token buckets per member in the node state: burst, refill, Retry-After, members without a
limit, and two gateways sharing one state sharing the limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.config.settings import MemberSettings, RateLimitSettings
from bus.core.errors import RateLimited
from bus.policy.ratelimit import RateLimits
from bus.state import NodeState, open_state


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _members(**limits: RateLimitSettings | None) -> dict[str, MemberSettings]:
    return {
        code: MemberSettings(public_key="x.pub", rate_limit=limit)  # type: ignore[arg-type]
        for code, limit in limits.items()
    }


def _state(tmp_path: Path, clock: Clock) -> NodeState:
    return open_state(tmp_path / "state.db", clock=clock)


def test_a_bucket_allows_its_burst_then_refills_at_its_rate(tmp_path: Path) -> None:
    clock = Clock()
    limits = RateLimits(
        _members(portal=RateLimitSettings(per_second=2, burst=3)), _state(tmp_path, clock)
    )
    for _ in range(3):
        limits.check("portal")
    with pytest.raises(RateLimited) as info:
        limits.check("portal")
    assert info.value.retry_after_s == 1  # the next token in half a second, said in whole ones
    clock.now += 0.5
    limits.check("portal")
    clock.now += 60  # never more than the burst
    for _ in range(3):
        limits.check("portal")
    with pytest.raises(RateLimited):
        limits.check("portal")


def test_a_bundle_costs_its_parts_and_one_larger_than_the_burst_is_not_refused_for_good(
    tmp_path: Path,
) -> None:
    clock = Clock()
    limits = RateLimits(
        _members(portal=RateLimitSettings(per_second=1, burst=3)), _state(tmp_path, clock)
    )
    limits.check("portal", cost=5)  # five parts against a burst of three: taken, into debt
    with pytest.raises(RateLimited) as info:
        limits.check("portal")
    assert info.value.retry_after_s == 3  # -2 tokens: three seconds to the next one
    clock.now += 3
    limits.check("portal", cost=2)
    with pytest.raises(RateLimited):
        limits.check("portal")


def test_rate_limits_per_member(tmp_path: Path) -> None:
    clock = Clock()
    limits = RateLimits(
        _members(portal=RateLimitSettings(per_second=0.25, burst=1), tax=None),
        _state(tmp_path, clock),
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


def test_two_gateways_sharing_a_state_share_the_limit(tmp_path: Path) -> None:
    clock = Clock()
    members = _members(portal=RateLimitSettings(per_second=0.1, burst=2))
    a = RateLimits(members, _state(tmp_path, clock))
    b = RateLimits(members, _state(tmp_path, clock))  # another process on the same state
    a.check("portal")
    b.check("portal")
    with pytest.raises(RateLimited):
        a.check("portal")
    with pytest.raises(RateLimited):
        b.check("portal")


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        RateLimitSettings(per_second=0)
    with pytest.raises(ValueError):
        RateLimitSettings(per_second=1, burst=0)
