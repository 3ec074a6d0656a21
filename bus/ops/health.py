"""Readiness as a list of named checks, and ``Cached``: slow answers fetched in the background.

A node is ready when every check passes. The node registers its checks when it starts
(``Node.start``): ``transport`` (connected now, ``Transport.is_connected``), ``trust-store``
(every member this node hosts has a trusted key; another member's revoked or expired certificate
shows in the detail but does not make this node unready), ``audit`` (the audit store could
write now, ``AuditStore.check``) and ``provider:<service>`` for each hosted service whose
adapter has a probe configured (``readiness_probe``). Another feature adds its own with
``Health.add(name, check)``. A check returns a short detail
when it passes and raises when it does not; the exception's message becomes the detail, so it
must name no secret and no personal identifier.

Each check runs in its own ``Cached``: at most once per ``ttl`` seconds, in a background thread,
and ``results`` waits at most ``timeout`` seconds in all, so a hanging provider never makes a
Kubernetes probe time out; a check with no answer yet fails with "no answer yet". The same class
keeps ``/metrics`` from waiting on a slow broker (``bus.ops.metrics``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Cached", "CheckResult", "Health"]

log = logging.getLogger("bus.health")
T = TypeVar("T")


class Cached(Generic[T]):
    """``fn()`` at most once per ``ttl`` seconds, in a background thread.

    ``get()`` starts a refresh when the last answer is older than ``ttl`` (unless one is
    running), waits for it until ``wait_until`` (monotonic) or ``timeout`` seconds, and
    returns the latest finished answer: ``(value, error, age_s)``; ``(None, TimeoutError, inf)``
    when none has finished yet. A refresh that overruns keeps running and is used once done.
    """

    def __init__(self, fn: Callable[[], T], *, ttl: float, timeout: float, name: str) -> None:
        self._fn = fn
        self.ttl = ttl
        self.timeout = timeout
        self.name = name
        self._lock = threading.Lock()
        self._value: T | None = None
        self._error: BaseException | None = TimeoutError("no answer yet")
        self._at: float | None = None  # monotonic time of the latest finished answer
        self._running: threading.Event | None = None

    def start(self) -> threading.Event | None:
        """Start a refresh if the answer is stale; return the event of the running one."""
        with self._lock:
            if self._at is not None and time.monotonic() - self._at < self.ttl:
                return None
            if self._running is None:
                self._running = threading.Event()
                name = f"cached-{self.name}"
                threading.Thread(target=self._refresh, name=name, daemon=True).start()
            return self._running

    def get(
        self, *, wait_until: float | None = None
    ) -> tuple[T | None, BaseException | None, float]:
        running = self.start()
        if running is not None:
            until = time.monotonic() + self.timeout if wait_until is None else wait_until
            running.wait(max(0.0, until - time.monotonic()))
        with self._lock:
            age = float("inf") if self._at is None else time.monotonic() - self._at
            return self._value, self._error, age

    def _refresh(self) -> None:
        value: T | None = None
        error: BaseException | None = None
        try:
            value = self._fn()
        except Exception as exc:
            error = exc
        with self._lock:
            self._value, self._error, self._at = value, error, time.monotonic()
            running, self._running = self._running, None
        if running is not None:
            running.set()


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


class Health:
    """Named readiness checks, each cached for ``ttl`` s; ``results`` answers within ``timeout``."""

    def __init__(self, *, ttl: float = 2.0, timeout: float = 0.8) -> None:
        self.ttl = ttl
        self.timeout = timeout
        self._checks: dict[str, Cached[str]] = {}

    def add(self, name: str, check: Callable[[], str]) -> None:
        """Add (or replace) check ``name``: it returns a detail, or raises when not ready."""
        self._checks[name] = Cached(check, ttl=self.ttl, timeout=self.timeout, name=name)

    def clear(self) -> None:
        self._checks.clear()

    def results(self) -> list[CheckResult]:
        checks = list(self._checks.items())
        for _, cached in checks:
            cached.start()  # all at once: they run side by side
        until = time.monotonic() + self.timeout
        out = []
        for name, cached in checks:
            detail, error, _ = cached.get(wait_until=until)
            if error is None:
                out.append(CheckResult(name, True, detail or "ok"))
            else:
                out.append(CheckResult(name, False, str(error) or type(error).__name__))
        return out

    def ready(self) -> bool:
        results = self.results()
        return bool(results) and all(r.ok for r in results)
