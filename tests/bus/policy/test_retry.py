"""Retry policy: what is retried, how long it waits, and that it never outlives the deadline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import adapters
from adapters import Deadline
from bus.config.settings import RetrySettings
from bus.core import errors
from bus.policy.retry import is_transient, retrying


class FakeTime:
    """A monotonic clock that only moves when the retry loop sleeps (or a call takes time)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """Raises ``errors`` in turn, then answers ``"ok"``; counts calls."""

    def __init__(self, *errors: BaseException, cost_s: float = 0.0,
                 time: FakeTime | None = None) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.cost_s = cost_s
        self.time = time

    def __call__(self) -> str:
        self.calls += 1
        if self.time is not None:
            self.time.now += self.cost_s
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def policy(attempts: int = 4, backoff: str = "exponential", max_delay_s: float = 2.0
           ) -> RetrySettings:
    return RetrySettings.model_validate(
        {"attempts": attempts, "backoff": backoff, "max_delay_s": max_delay_s}
    )


def run(settings: RetrySettings, call: Callable[[], Any], time: FakeTime,
        deadline_s: float = 60.0, **kw: Any) -> Any:
    deadline = Deadline.after(deadline_s, clock=time.clock)
    return retrying(settings, deadline, sleep=time.sleep, **kw)(call)


# --- transient errors are retried -------------------------------------------------------------


def test_transient_error_is_retried_and_the_fourth_attempt_succeeds() -> None:
    time = FakeTime()
    call = Flaky(*(adapters.ProviderUnavailable("down") for _ in range(3)))
    assert run(policy(attempts=4), call, time) == "ok"
    assert call.calls == 4
    assert time.sleeps == pytest.approx([0.1, 0.2, 0.4])


def test_retries_stop_after_the_configured_attempts() -> None:
    time = FakeTime()
    last = adapters.ProviderTimeout("slow #4")
    call = Flaky(*(adapters.ProviderTimeout(f"slow #{i}") for i in range(1, 4)), last,
                 adapters.ProviderTimeout("never reached"))
    with pytest.raises(adapters.ProviderTimeout) as info:
        run(policy(attempts=4), call, time)
    assert info.value is last  # the last error itself, not a tenacity RetryError
    assert call.calls == 4
    assert len(time.sleeps) == 3


def test_one_attempt_means_no_retry() -> None:
    time = FakeTime()
    call = Flaky(adapters.ProviderUnavailable("down"))
    with pytest.raises(adapters.ProviderUnavailable):
        run(policy(attempts=1), call, time)
    assert call.calls == 1
    assert time.sleeps == []


@pytest.mark.parametrize(
    "error",
    [errors.ProviderUnavailable("x"), errors.ProviderTimeout("x"), errors.BusUnavailable("x")],
)
def test_transient_bus_errors_are_retried(error: errors.BusError) -> None:
    time = FakeTime()
    call = Flaky(error)
    assert run(policy(attempts=2), call, time) == "ok"
    assert call.calls == 2


def test_on_retry_sees_each_retried_error() -> None:
    time = FakeTime()
    seen: list[BaseException] = []
    failures = [adapters.ProviderUnavailable("a"), adapters.ProviderTimeout("b")]
    call = Flaky(*failures)
    assert run(policy(), call, time, on_retry=seen.append) == "ok"
    assert seen == failures


# --- other errors are not ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        adapters.ProviderRejected("400"),
        adapters.NoData("404"),
        adapters.ProviderInvalidAnswer("garbage"),
        errors.SchemaInvalid("bad field"),
        errors.AccessDenied("no"),
        errors.SignatureInvalid("forged", reason="bad-signature"),
        errors.Expired("late"),
        errors.ProviderRejected("no"),
        errors.DeadlineExceeded("late"),
        ValueError("a bug"),
    ],
)
def test_non_transient_errors_are_never_retried(error: BaseException) -> None:
    time = FakeTime()
    call = Flaky(error)
    seen: list[BaseException] = []
    with pytest.raises(type(error)) as info:
        run(policy(attempts=10), call, time, on_retry=seen.append)
    assert info.value is error
    assert call.calls == 1
    assert time.sleeps == []
    assert seen == []


def test_a_non_transient_error_after_transient_ones_stops_at_once() -> None:
    time = FakeTime()
    call = Flaky(adapters.ProviderUnavailable("down"), adapters.ProviderRejected("400"),
                 adapters.ProviderUnavailable("never reached"))
    with pytest.raises(adapters.ProviderRejected):
        run(policy(attempts=10), call, time)
    assert call.calls == 2


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (adapters.ProviderUnavailable(), True),
        (adapters.ProviderTimeout(), True),
        (adapters.ProviderRejected(), False),
        (adapters.NoData(), False),
        (adapters.ProviderInvalidAnswer(), False),
        (errors.ProviderUnavailable(), True),
        (errors.ProviderTimeout(), True),
        (errors.BusUnavailable(), True),
        (errors.SchemaInvalid(), False),
        (errors.MalformedRequest(), False),
        (errors.NoData(), False),
        (TimeoutError(), False),
        (ConnectionError(), False),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


# --- the deadline -----------------------------------------------------------------------------


def test_retries_stop_when_the_next_wait_would_pass_the_deadline() -> None:
    time = FakeTime()
    call = Flaky(*(adapters.ProviderUnavailable(str(i)) for i in range(10)))
    # waits would be 0.1, 0.2, 0.4 …; 0.5 s left: 0.1 fits (0.4 left), 0.2 fits (0.2 left),
    # 0.4 does not.
    with pytest.raises(adapters.ProviderUnavailable):
        run(policy(attempts=10), call, time, deadline_s=0.5)
    assert call.calls == 3
    assert time.sleeps == pytest.approx([0.1, 0.2])
    assert sum(time.sleeps) <= 0.5


def test_time_spent_in_calls_counts_against_the_deadline() -> None:
    time = FakeTime()
    call = Flaky(*(adapters.ProviderTimeout(str(i)) for i in range(10)), cost_s=1.0, time=time)
    with pytest.raises(adapters.ProviderTimeout):
        run(policy(attempts=10, max_delay_s=0.5), call, time, deadline_s=2.5)
    # call 1 (1 s), wait 0.1, call 2 (1 s) -> 0.4 s left, wait 0.2 fits, call 3 -> past the end
    assert call.calls == 3
    assert time.sleeps == pytest.approx([0.1, 0.2])


def test_an_expired_deadline_allows_no_retry() -> None:
    time = FakeTime()
    call = Flaky(adapters.ProviderUnavailable("down"))
    with pytest.raises(adapters.ProviderUnavailable):
        run(policy(attempts=5), call, time, deadline_s=0.0)
    assert call.calls == 1
    assert time.sleeps == []


def test_a_zero_wait_is_refused_once_the_deadline_has_passed() -> None:
    # fixed backoff of 0 s: retries go on while there is time, but never past the deadline
    time = FakeTime()
    call = Flaky(*(adapters.ProviderUnavailable(str(i)) for i in range(10)), cost_s=0.3, time=time)
    with pytest.raises(adapters.ProviderUnavailable):
        run(policy(attempts=10, backoff="fixed", max_delay_s=0.0), call, time, deadline_s=1.0)
    assert call.calls == 4  # at 0.3, 0.6, 0.9 there is time left; at 1.2 there is none
    assert time.sleeps == [0.0, 0.0, 0.0]


# --- waits ------------------------------------------------------------------------------------


def test_exponential_waits_grow_and_are_capped_by_max_delay() -> None:
    time = FakeTime()
    call = Flaky(*(adapters.ProviderUnavailable(str(i)) for i in range(7)))
    assert run(policy(attempts=8, max_delay_s=1.0), call, time, deadline_s=600) == "ok"
    assert time.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    assert all(b >= a for a, b in zip(time.sleeps, time.sleeps[1:], strict=False))


def test_fixed_waits_use_max_delay() -> None:
    time = FakeTime()
    call = Flaky(*(adapters.ProviderUnavailable(str(i)) for i in range(3)))
    assert run(policy(attempts=4, backoff="fixed", max_delay_s=0.75), call, time) == "ok"
    assert time.sleeps == [0.75, 0.75, 0.75]


def test_no_real_sleeping_happens() -> None:
    import time as real_time

    fake = FakeTime()
    call = Flaky(*(adapters.ProviderUnavailable(str(i)) for i in range(19)))
    started = real_time.monotonic()
    assert run(policy(attempts=20, max_delay_s=600), call, fake, deadline_s=10**6) == "ok"
    assert real_time.monotonic() - started < 5
    assert sum(fake.sleeps) > 1000
