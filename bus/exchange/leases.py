"""Leases on requests being executed: one execution at a time, on every node sharing the state.

Before a provider worker calls an agency it takes the request's lease in the node state
(``bus.state``, key ``request/<message id>``) for ``LEASE_S`` seconds, at most until the request
expires, and keeps it alive while it works: a heartbeat thread renews every lease its process
holds each ``RENEW_S`` (``NodeState.renew``). A worker that dies stops renewing, so its lease
ends within ``LEASE_S`` and a copy of its request is executed by another worker then, long
before the request expires, however long the service's deadline. What a copy of the same
request delivered meanwhile (a broker redelivery after a lost ack, a retry forward, another
node's consumer) finds there:

* the answer recorded (``AnsweredElsewhere``): it is sent again, the agency is not asked;
* a lease still running: the copy waits for it (``wait_s`` at most, polling), and then, if the
  lease still runs, goes back through the transport's retry queue until it ends (``InProgress``);
* a lease that ran out without an answer (its worker was killed, its node lost): the copy takes
  it over and executes again, ``attempt`` above 1, which the worker counts
  (``bus_reexecutions_total``) and writes into the audit entry (``provider:re-executed``).

Owners are ``<holder>/<random>``, the holder being the node process (its name on the
transport). A node on the embedded transport is one process under its name, so when it starts
it ends the leases its previous run left (``NodeState.abandon``): what that run was executing
is taken over at once instead of after the lease. Processes on a broker cannot know whether
another process of their name is alive; theirs run out.

A worker that cannot answer now (a transient error sent through the retry queues, an error that
exhausted them) releases the lease: the next copy executes afresh, as it would have without
leases — unless the lease was taken over from a dead worker, which may have reached the agency:
then it ends, and the copy that executes next is still a re-execution (found by a 10,000-request
chaos run, where a takeover met the breaker opened by an agency outage and the execution after
it passed for a first one).

A worker that has the agency's answer but could not record it (its audit entry could not be
written) ends the lease instead (``end``): the next copy takes it over and its execution
is counted and audited as a re-execution, like one after a killed worker.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from bus.state import NodeState

__all__ = ["LEASE_S", "RENEW_S", "AnsweredElsewhere", "InProgress", "Lease", "Leases"]

log = logging.getLogger("bus.provider")
LEASE_S = 15.0  # a lease not renewed for this long is taken over (its worker died)
RENEW_S = 5.0  # how often the heartbeat renews the leases a process holds
WAIT_S = 2.0  # longest a copy waits in its worker for another's lease before going round again
_POLL_S = (0.01, 0.02, 0.05, 0.1, 0.2)  # then 0.2 s each


class AnsweredElsewhere(Exception):
    """The request's answer is recorded: ``body`` is the signed reply to send again."""

    def __init__(self, body: bytes) -> None:
        super().__init__("answered")
        self.body = body


class InProgress(Exception):
    """Another worker's lease still runs: come back in ``delay_s``."""

    def __init__(self, delay_s: float) -> None:
        super().__init__("in-progress")
        self.delay_s = delay_s


@dataclass
class Lease:
    key: str
    owner: str
    attempt: int
    lease_s: float
    done: bool = False


class Leases:
    """Take, settle and release request leases in ``state`` as ``holder`` (see the module
    docstring)."""

    def __init__(
        self,
        state: NodeState,
        *,
        holder: str,
        lease_s: float = LEASE_S,
        renew_s: float = RENEW_S,
        wait_s: float = WAIT_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.state = state
        self.holder = holder
        self.lease_s = lease_s
        self.renew_s = renew_s
        self.wait_s = wait_s
        self.sleep = sleep
        self._held: dict[str, Lease] = {}  # by owner
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def take(self, message_id: str, expires_at: float, lease_s: float | None = None) -> Lease:
        """The lease of ``message_id`` (``lease_s``, default the one given at construction),
        renewed by the heartbeat until settled or released; ``AnsweredElsewhere`` or
        ``InProgress`` instead."""
        lease_s = self.lease_s if lease_s is None else lease_s
        key = f"request/{message_id}"
        owner = f"{self.holder}/{uuid.uuid4().hex}"
        give_up = time.monotonic() + self.wait_s
        polls = iter(_POLL_S)
        while True:
            claim = self.state.claim(key, owner, lease_s=lease_s, expires_at=expires_at)
            if claim.granted:
                lease = Lease(key, owner, claim.attempt, lease_s)
                self._hold(lease)
                return lease
            if claim.state == "answered":
                assert claim.result is not None
                raise AnsweredElsewhere(claim.result)
            left = (claim.lease_until or 0.0) - time.time()
            if time.monotonic() >= give_up:
                raise InProgress(min(max(left, 0.1), 5.0))
            self.sleep(next(polls, _POLL_S[-1]))

    def settle(self, lease: Lease, body: bytes) -> None:
        """Record the answer sent under ``lease`` (copies get it from now on)."""
        if not lease.done:
            self._drop(lease)
            self.state.settle(lease.key, lease.owner, body)
            lease.done = True

    def release(self, lease: Lease) -> None:
        """Give the lease up unanswered: the next copy executes afresh. A lease taken over from
        a worker that died (``attempt`` above 1) ends instead (``end``): the agency may have
        executed the request for that worker, so whichever copy executes it next is counted and
        audited as a re-execution, however many copies failed in between (an open breaker, an
        agency outage)."""
        if lease.attempt > 1:
            self.end(lease)
            return
        if not lease.done:
            self._drop(lease)
            self.state.release(lease.key, lease.owner)
            lease.done = True

    def end(self, lease: Lease) -> None:
        """Give the lease up executed but unrecorded: it ends now, so the next copy takes it
        over (``attempt`` above 1) instead of starting afresh."""
        if not lease.done:
            self._drop(lease)
            self.state.renew(lease.key, lease.owner, lease_s=0)
            lease.done = True

    def close(self) -> None:
        """Stop the heartbeat (the leases still held then run out)."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)

    def _hold(self, lease: Lease) -> None:
        with self._lock:
            self._held[lease.owner] = lease
            if self._heartbeat is None:
                self._heartbeat = threading.Thread(
                    target=self._renew_held, name="lease-heartbeat", daemon=True
                )
                self._heartbeat.start()

    def _drop(self, lease: Lease) -> None:
        with self._lock:
            self._held.pop(lease.owner, None)

    def _renew_held(self) -> None:
        while not self._stop.wait(self.renew_s):
            with self._lock:
                held = list(self._held.values())
            for lease in held:
                try:
                    if not self.state.renew(lease.key, lease.owner, lease_s=lease.lease_s):
                        self._drop(lease)  # taken over (this worker was too slow) or released
                except Exception:  # the state away: the lease may run out; try again next beat
                    log.warning("a request lease could not be renewed", exc_info=True)
