"""Retry policy as data: a service's ``retry`` settings become one tenacity ``Retrying``.

Which errors are transient is declared once, on the error classes (``transient``): adapter
errors (``adapters.ProviderError``) and bus errors alike. A retry never outlives the deadline and
never repeats a refused request. ``sleep`` is injectable so tests run instantly.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_fixed,
)

from adapters import Deadline, ProviderError
from bus.config.settings import RetrySettings
from bus.core.errors import BusError

__all__ = ["is_transient", "retrying"]


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (ProviderError, BusError)) and exc.transient


def retrying(
    policy: RetrySettings,
    deadline: Deadline,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[BaseException], None] | None = None,
) -> Retrying:
    wait = (
        wait_exponential(multiplier=0.1, max=policy.max_delay_s)
        if policy.backoff == "exponential"
        else wait_fixed(policy.max_delay_s)
    )

    def stop(state: RetryCallState) -> bool:
        if stop_after_attempt(policy.attempts)(state):
            return True
        # Do not start an attempt we could not finish: the next wait must fit in the deadline.
        return wait(state) >= deadline.remaining()

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            exc = state.outcome.exception()
            if exc is not None:
                on_retry(exc)

    return Retrying(
        stop=stop,
        wait=wait,
        retry=retry_if_exception(is_transient),
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )
