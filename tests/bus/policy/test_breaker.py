"""The circuit breaker's states, driven by an injected clock."""

from __future__ import annotations

import pytest

from bus.config.settings import BreakerSettings
from bus.core.errors import CircuitOpen
from bus.policy.breaker import CircuitBreaker, State


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def breaker(
    clock: Clock, failures: int = 3, reset_s: float = 10
) -> tuple[CircuitBreaker, list[State]]:
    seen: list[State] = []
    b = CircuitBreaker(
        BreakerSettings(failures=failures, reset_s=reset_s),
        name="svc",
        clock=clock,
        on_change=seen.append,
    )
    return b, seen


def test_opens_after_consecutive_failures_only(clock: Clock) -> None:
    b, seen = breaker(clock)
    b.failure()
    b.failure()
    b.success()  # resets the count
    b.failure()
    b.failure()
    assert b.state is State.closed
    b.failure()
    assert b.state is State.open
    assert seen == [State.closed, State.open]
    with pytest.raises(CircuitOpen, match=r"next probe in 10\.0 s"):
        b.before_call()
    assert CircuitOpen("x").transient and CircuitOpen.code == "circuit-open"


def test_half_open_lets_one_probe_through_and_its_success_closes(clock: Clock) -> None:
    b, seen = breaker(clock, failures=1)
    b.failure()
    clock.now += 9.9
    with pytest.raises(CircuitOpen):
        b.before_call()
    clock.now += 0.2
    b.before_call()  # the probe
    assert b.state is State.half_open
    with pytest.raises(CircuitOpen, match="probe is in flight"):
        b.before_call()  # only one probe at a time
    b.success()
    assert b.state is State.closed
    b.before_call()
    assert seen == [State.closed, State.open, State.half_open, State.closed]


def test_a_failed_probe_opens_it_again_for_another_period(clock: Clock) -> None:
    b, _ = breaker(clock, failures=2, reset_s=5)
    b.failure()
    b.failure()
    clock.now += 5
    b.before_call()
    b.failure()  # one failure in half-open is enough
    assert b.state is State.open
    clock.now += 4
    with pytest.raises(CircuitOpen):
        b.before_call()
    clock.now += 1
    b.before_call()
    assert b.state is State.half_open


def test_zero_failures_disables_it(clock: Clock) -> None:
    b, seen = breaker(clock, failures=0)
    for _ in range(100):
        b.failure()
    b.before_call()
    assert b.state is State.closed and seen == [State.closed]
