"""The replay guard: ids remembered until they expire, per source; bounded; thread-safe."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest

from bus.core.envelope import Envelope, Kind, new_id
from bus.core.errors import Replayed
from bus.core.replay import ReplayGuard, delivery_source
from bus.state import open_state

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def envelope(lifetime_s: float = 5, **kw: Any) -> Envelope:
    fields: dict[str, Any] = {
        "id": new_id(), "correlation": new_id(), "client": "portal",
        "service": "civil-registry/residence/v1", "user": "u", "purpose": "p",
        "issued_at": T0, "expires_at": T0 + dt.timedelta(seconds=lifetime_s),
        "kind": Kind.request, "payload": {},
    }
    fields.update(kw)
    return Envelope(**fields)


def test_same_source_is_admitted_again_another_is_refused() -> None:
    guard = ReplayGuard(clock=Clock())
    e = envelope()
    guard.admit(e, "a")
    guard.admit(e, "a")  # a redelivery
    with pytest.raises(Replayed) as info:
        guard.admit(e, "b")
    assert info.value.code == "replayed" and info.value.reason == "replayed"
    assert info.value.message_id == e.id and info.value.status == 409
    guard.admit(envelope(), "b")  # other ids are not affected


def test_ids_are_forgotten_once_expired() -> None:
    clock = Clock()
    guard = ReplayGuard(clock=clock)
    e = envelope(lifetime_s=5)
    guard.admit(e, "a")
    clock.now = T0 + dt.timedelta(seconds=4.9)
    with pytest.raises(Replayed):
        guard.admit(e, "b")
    clock.now = T0 + dt.timedelta(seconds=5)  # Seal.verify refuses it as expired from here on
    guard.admit(envelope(), "x")
    assert len(guard) == 1


def test_bounded_forgetting_the_soonest_to_expire_first() -> None:
    guard = ReplayGuard(limit=3, clock=Clock())
    long_lived = envelope(lifetime_s=60)
    guard.admit(long_lived, "a")
    for _ in range(5):
        guard.admit(envelope(lifetime_s=1), "a")
    assert len(guard) == 3 and guard.evicted == 3
    with pytest.raises(Replayed):
        guard.admit(long_lived, "b")


def test_concurrent_sources_exactly_one_wins() -> None:
    guard = ReplayGuard(clock=Clock())
    e = envelope()
    admitted: list[str] = []
    barrier = threading.Barrier(16)

    def race(source: str) -> None:
        barrier.wait()
        try:
            guard.admit(e, source)
            admitted.append(source)
        except Replayed:
            pass

    threads = [threading.Thread(target=race, args=(f"s{i}",)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 1


def test_delivery_source_is_the_bytes_and_the_reply_address() -> None:
    assert delivery_source(b"x", "reply.a") == delivery_source(b"x", "reply.a")
    assert delivery_source(b"x", "reply.a") != delivery_source(b"x", "reply.b")
    assert delivery_source(b"x", "reply.a") != delivery_source(b"y", "reply.a")
    assert delivery_source(b"x", None) == delivery_source(b"x", "")


def test_admit_once_refuses_any_second_use_until_expiry() -> None:
    """The SOAP gateway's use: no redeliveries there, the same key twice is a replay."""
    clock = Clock()
    guard = ReplayGuard(clock=clock)
    expires = T0 + dt.timedelta(seconds=5)
    ask = {"client": "portal", "service": "civil-registry/birth/v1", "what": "this request"}
    guard.admit_once("soap:k1", expires, **ask)
    with pytest.raises(Replayed) as info:
        guard.admit_once("soap:k1", expires, **ask)
    assert info.value.code == "replayed" and info.value.client == "portal"
    assert info.value.service == "civil-registry/birth/v1" and info.value.message_id is None
    guard.admit_once("soap:k2", expires, **ask)  # other keys are not affected
    clock.now = expires - dt.timedelta(microseconds=1)
    with pytest.raises(Replayed):
        guard.admit_once("soap:k1", expires, **ask)
    clock.now = expires  # refused as expired by the gateway from here on: forgotten
    guard.admit_once("soap:k3", expires + dt.timedelta(seconds=1), **ask)
    assert len(guard) == 1


def test_the_store_decides_for_other_guards_after_restarts_and_overflows(tmp_path: Path) -> None:
    """With a node-state store (``bus.state``), another guard on it — another process, the
    node after a restart — refuses what the first admitted, and a full memory forgets nothing."""
    clock = Clock()

    def guard(limit: int = 100_000) -> ReplayGuard:
        store = open_state(tmp_path / "state.db", clock=lambda: clock.now.timestamp())
        return ReplayGuard(limit, clock=clock, store=store)

    first = guard()
    e = envelope(lifetime_s=60)
    first.admit(e, "a")
    restarted = guard()
    restarted.admit(e, "a")  # the transport's redelivery after the restart: answered
    with pytest.raises(Replayed):
        restarted.admit(e, "b")
    until = T0 + dt.timedelta(seconds=60)
    first.admit_once("soap-digest", until, client="portal", service="s", what="this request")
    with pytest.raises(Replayed):
        restarted.admit_once("soap-digest", until, client="portal", service="s", what="it")
    small = guard(limit=1)
    kept = [envelope(lifetime_s=60) for _ in range(3)]
    for k in kept:
        small.admit(k, "a")
    assert len(small) == 1 and small.evicted == 2
    with pytest.raises(Replayed):
        small.admit(kept[0], "b")  # forgotten by the memory, not by the store
