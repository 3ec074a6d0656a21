"""A circuit breaker per service: stop calling a provider that keeps failing, probe it later.

Closed: calls go through; ``failures`` consecutive transient failures (unreachable, timeout,
5xx) open it. Open: calls are refused at once with ``CircuitOpen`` (transient, so a service with
``redeliveries`` retries through the transport's retry queues) until ``reset_s`` has passed.
Half-open: one probe call goes through; its success closes the breaker, its failure opens it
again for another ``reset_s``. A client error (no data, rejected) shows the provider is up and
counts as a success. ``failures: 0`` disables the breaker. The clock is injectable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import IntEnum

from bus.config.settings import BreakerSettings
from bus.core.errors import CircuitOpen

__all__ = ["CircuitBreaker", "State"]


class State(IntEnum):
    """Also the value of the ``bus_circuit_state`` gauge."""

    closed = 0
    half_open = 1
    open = 2


class CircuitBreaker:
    def __init__(
        self,
        settings: BreakerSettings,
        *,
        name: str,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[State], None] | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = State.closed
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        if on_change is not None:
            on_change(State.closed)

    @property
    def state(self) -> State:
        return self._state

    def before_call(self) -> None:
        """Let a call through, or raise ``CircuitOpen``."""
        if self.settings.failures == 0:
            return
        with self._lock:
            if self._state is State.closed:
                return
            if self._state is State.open:
                wait = self._opened_at + self.settings.reset_s - self._clock()
                if wait > 0:
                    raise CircuitOpen(f"circuit open for {self.name}; next probe in {wait:.1f} s")
                self._set(State.half_open)
            if self._probing:
                raise CircuitOpen(f"circuit half-open for {self.name}; a probe is in flight")
            self._probing = True

    def success(self) -> None:
        if self.settings.failures == 0:
            return
        with self._lock:
            self._failures = 0
            self._probing = False
            if self._state is not State.closed:
                self._set(State.closed)

    def failure(self) -> None:
        if self.settings.failures == 0:
            return
        with self._lock:
            self._probing = False
            self._failures += 1
            if self._state is State.half_open or self._failures >= self.settings.failures:
                self._opened_at = self._clock()
                if self._state is not State.open:
                    self._set(State.open)

    def _set(self, state: State) -> None:
        self._state = state
        if self._on_change is not None:
            self._on_change(state)
