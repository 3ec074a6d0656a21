"""The node-state contract, run against SQLite and the live PostgreSQL on 127.0.0.1:5432.

Each PostgreSQL test runs in a schema of its own (``tests.live.pg_schema``), dropped afterwards.
``open_state`` may be called twice for one test: the second store is another node (PostgreSQL)
or the same node after a restart (SQLite) — either way it must see what the first one kept.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bus.core.errors import BusUnavailable
from bus.state import NodeState, open_state
from tests.live import pg_schema

Opener = Callable[[], NodeState]


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def opener(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Opener]:
    opened: list[NodeState] = []
    pg = request.param == "postgres"
    with pg_schema("state_test") if pg else contextlib.nullcontext("") as url:
        where = url or f"sqlite:///{tmp_path / 'state.db'}"

        def open_one() -> NodeState:
            opened.append(open_state(where, clock=clock))
            return opened[-1]

        try:
            yield open_one
        finally:
            for state in opened:
                state.close()


@pytest.fixture
def state(opener: Opener) -> NodeState:
    return opener()


def test_an_id_is_admitted_again_only_from_the_same_source(state: NodeState, clock: Clock) -> None:
    until = clock.now + 60
    assert state.remember("env-1", until, "bytes-a")
    assert state.remember("env-1", until, "bytes-a")  # a redelivery
    assert not state.remember("env-1", until, "bytes-b")  # a replay from elsewhere
    assert state.remember("env-2", until, "bytes-b")


def test_another_node_and_a_restart_see_the_seen_ids(opener: Opener, clock: Clock) -> None:
    first = opener()
    assert first.remember("env-1", clock.now + 60, "a")
    first.close()
    other = opener()
    assert not other.remember("env-1", clock.now + 60, "b")
    assert other.remember("env-1", clock.now + 60, "a")


def test_an_expired_id_may_be_used_again_and_purge_deletes_it(
    state: NodeState, clock: Clock
) -> None:
    assert state.remember("env-1", clock.now + 10, "a")
    clock.now += 11
    assert state.remember("env-1", clock.now + 10, "b")  # the old one expired
    assert not state.remember("env-1", clock.now + 10, "a")
    state.remember("env-2", clock.now + 5, "c")
    clock.now += 20
    assert state.purge() == 2


def test_a_claim_is_new_then_busy_then_answered(opener: Opener, clock: Clock) -> None:
    a, b = opener(), opener()
    assert a.claim("request/1", "worker-a", lease_s=5, expires_at=clock.now + 60).state == "new"
    busy = b.claim("request/1", "worker-b", lease_s=5, expires_at=clock.now + 60)
    assert (busy.state, busy.lease_until) == ("busy", clock.now + 5)
    assert not busy.granted
    assert not b.settle("request/1", "worker-b", b"not mine")  # only the holder settles
    assert a.settle("request/1", "worker-a", b"the answer")
    answered = b.claim("request/1", "worker-b", lease_s=5, expires_at=clock.now + 60)
    assert (answered.state, answered.result, answered.attempt) == ("answered", b"the answer", 1)


def test_a_lease_that_ran_out_is_taken_over_and_counted(state: NodeState, clock: Clock) -> None:
    assert state.claim("request/1", "dead", lease_s=5, expires_at=clock.now + 60).granted
    clock.now += 6  # the holder died without settling
    taken = state.claim("request/1", "heir", lease_s=5, expires_at=clock.now + 60)
    assert (taken.state, taken.attempt, taken.granted) == ("taken-over", 2, True)
    assert not state.settle("request/1", "dead", b"late")  # the old holder lost it
    assert state.settle("request/1", "heir", b"answer")
    again = state.claim("request/1", "third", lease_s=5, expires_at=clock.now + 60)
    assert (again.state, again.result, again.attempt) == ("answered", b"answer", 2)


def test_a_renewed_lease_is_kept_and_only_by_its_holder(state: NodeState, clock: Clock) -> None:
    assert state.claim("request/1", "alive", lease_s=5, expires_at=clock.now + 60).granted
    for _ in range(4):  # 20 s of a worker still calling the agency, renewing as it goes
        clock.now += 4
        assert state.renew("request/1", "alive", lease_s=5)
    assert state.claim("request/1", "copy", lease_s=5, expires_at=clock.now + 60).state == "busy"
    assert not state.renew("request/1", "copy", lease_s=5)  # not the holder: nothing happens
    clock.now += 6  # the holder stopped renewing (it died)
    assert state.claim("request/1", "copy", lease_s=5, expires_at=clock.now + 60).granted
    assert not state.renew("request/1", "alive", lease_s=5)  # it lost the lease


def test_a_lease_never_outlives_the_key(state: NodeState, clock: Clock) -> None:
    state.claim("request/1", "a", lease_s=300, expires_at=clock.now + 10)
    clock.now += 11
    assert state.claim("request/1", "b", lease_s=300, expires_at=clock.now + 10).state == "new"


def test_a_released_key_is_claimed_afresh(state: NodeState, clock: Clock) -> None:
    state.claim("request/1", "a", lease_s=5, expires_at=clock.now + 60)
    state.release("request/1", "other")  # not the holder: nothing happens
    assert state.claim("request/1", "b", lease_s=5, expires_at=clock.now + 60).state == "busy"
    state.release("request/1", "a")
    assert state.claim("request/1", "b", lease_s=5, expires_at=clock.now + 60).state == "new"


def test_the_leases_of_a_holder_known_gone_end_at_once(state: NodeState, clock: Clock) -> None:
    state.claim("request/1", "node-1/run-a", lease_s=30, expires_at=clock.now + 60)
    state.claim("request/2", "node-10/run-b", lease_s=30, expires_at=clock.now + 60)  # another
    state.claim("request/3", "node-1/run-a2", lease_s=30, expires_at=clock.now + 60)
    state.settle("request/3", "node-1/run-a2", b"answered")
    assert state.abandon("node-1") == 1  # not node-10's, not an answered one
    taken = state.claim("request/1", "node-1/run-c", lease_s=30, expires_at=clock.now + 60)
    assert (taken.state, taken.attempt) == ("taken-over", 2)
    assert state.claim("request/2", "x/y", lease_s=30, expires_at=clock.now + 60).state == "busy"
    assert state.claim("request/3", "x/y", lease_s=30, expires_at=clock.now + 60).result == (
        b"answered")


def test_a_key_used_for_another_request_is_a_conflict(state: NodeState, clock: Clock) -> None:
    state.claim("idem/k", "a", lease_s=5, expires_at=clock.now + 60, fingerprint="body-1")
    state.settle("idem/k", "a", b"first")
    other = state.claim("idem/k", "b", lease_s=5, expires_at=clock.now + 60, fingerprint="body-2")
    assert other.state == "conflict" and other.result is None
    same = state.claim("idem/k", "b", lease_s=5, expires_at=clock.now + 60, fingerprint="body-1")
    assert same.result == b"first"


def test_only_one_of_many_concurrent_claims_is_granted(opener: Opener, clock: Clock) -> None:
    stores = [opener() for _ in range(4)]
    claims: list[str] = []
    lock = threading.Lock()

    def claim(i: int) -> None:
        c = stores[i % 4].claim("request/x", f"w{i}", lease_s=5, expires_at=clock.now + 60)
        with lock:
            claims.append(c.state)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claims) == ["busy"] * 15 + ["new"]


def test_a_bucket_is_shared_and_refills(opener: Opener, clock: Clock) -> None:
    a, b = opener(), opener()
    assert a.take("portal", 1, rate=2, burst=3) == 0.0
    assert b.take("portal", 1, rate=2, burst=3) == 0.0
    assert a.take("portal", 1, rate=2, burst=3) == 0.0
    assert b.take("portal", 1, rate=2, burst=3) == pytest.approx(0.5)  # both nodes took
    clock.now += 0.5
    assert a.take("portal", 1, rate=2, burst=3) == 0.0
    clock.now += 100
    assert b.take("portal", 5, rate=2, burst=3) == 0.0  # a bundle goes into debt
    assert a.take("portal", 1, rate=2, burst=3) == pytest.approx(1.5)
    assert a.take("other", 1, rate=2, burst=3) == 0.0  # buckets are per name


def test_takes_from_many_threads_never_exceed_the_burst(opener: Opener) -> None:
    stores = [opener() for _ in range(3)]
    granted: list[float] = []
    lock = threading.Lock()

    def take(i: int) -> None:
        wait = stores[i % 3].take("busy", 1, rate=0.001, burst=5)
        with lock:
            granted.append(wait)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for w in granted if w == 0.0) == 5


def test_a_state_that_cannot_be_reached_is_bus_unavailable(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(BusUnavailable, match=r"dir\.db"):
        open_state(tmp_path / "dir.db")


@pytest.mark.postgres
def test_a_postgres_state_away_is_bus_unavailable_without_its_password() -> None:
    state = open_state("postgresql://bus:hunter22@127.0.0.1:1/nowhere")
    try:
        with pytest.raises(BusUnavailable) as caught:
            state.remember("x", 1e12, "a")
        assert "hunter22" not in str(caught.value)
    finally:
        state.close()


@pytest.mark.postgres
def test_a_connection_the_server_dropped_fails_one_call_and_is_opened_again(
    clock: Clock,
) -> None:
    import psycopg

    from bus.state.postgres import PostgresState
    from tests.live import PG_URL

    with pg_schema("state_test") as url:
        state = PostgresState(url, clock=clock)
        try:
            assert state.remember("before", clock.now + 60, "a")
            row = state.db.one("SELECT pg_backend_pid()")
            assert row is not None
            with psycopg.connect(PG_URL, autocommit=True) as admin:  # a server restart, in small
                admin.execute("SELECT pg_terminate_backend(%s)", (row[0],))
            with pytest.raises(BusUnavailable):
                state.remember("during", clock.now + 60, "a")  # the call in flight fails
            assert state.remember("after", clock.now + 60, "a")  # the next one reconnects
            assert not state.remember("before", clock.now + 60, "b")  # nothing was lost
        finally:
            state.close()
