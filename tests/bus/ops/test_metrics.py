"""``bus.ops.metrics`` and ``bus.ops.health`` on their own: registries per node, documented names,
cached children, and answers that never wait long for a slow source."""

from __future__ import annotations

import re
import threading
import time

from prometheus_client import generate_latest

import bus.ops.metrics
from bus.ops.health import Cached, Health
from bus.ops.metrics import BusMetrics
from bus.transport import QueueStats, TransportStats


def _families(metrics: BusMetrics) -> set[str]:
    """The bus_ metric families of a registry, as named in the exposition (no suffixes)."""
    text = generate_latest(metrics.registry).decode()
    return set(re.findall(r"^# TYPE (bus_\w+) ", text, re.MULTILINE))


def test_each_node_has_its_own_registry() -> None:
    one, two = BusMetrics(), BusMetrics()
    one.exchanges("portal", "a/b/v1", "ok").inc()
    assert one.exchanges("portal", "a/b/v1", "ok")._value.get() == 1
    assert two.exchanges("portal", "a/b/v1", "ok")._value.get() == 0


def test_children_are_kept_by_label_values() -> None:
    metrics = BusMetrics()
    first = metrics.stage_seconds("a/b/v1", "client", "sign")
    assert metrics.stage_seconds("a/b/v1", "client", "sign") is first
    assert metrics.stage_seconds("a/b/v1", "client", "verify") is not first


def test_every_exported_metric_is_documented_in_the_module_docstring() -> None:
    metrics = BusMetrics()
    doc = bus.ops.metrics.__doc__ or ""
    documented = set(re.findall(r"``(bus_[a-z_]+)``", doc))
    exported = _families(metrics)
    # Counters are exported as <family> with samples <family>_total; the doc names the samples.
    exported_as_documented = {
        name + "_total" if f"{name}_total" in documented else name for name in exported
    }
    exported_as_documented = {
        "bus_build_info" if n == "bus_build" else n for n in exported_as_documented
    }
    assert exported_as_documented == documented


def test_scrape_time_gauges_come_from_the_watched_sources() -> None:
    metrics = BusMetrics()
    stats = TransportStats({"svc.a.b.v1": QueueStats(4, 2)}, dead_letters=3, retrying=1)
    metrics.watch(
        node="n1",
        transport="embedded",
        stats=lambda: stats,
        connected=lambda: True,
        readiness=list,
        queues={"svc.a.b.v1": "a/b/v1"},
    )
    text = generate_latest(metrics.registry).decode()
    assert 'bus_queue_depth_messages{service="a/b/v1"} 4.0' in text
    assert 'bus_queue_consumers{service="a/b/v1"} 2.0' in text
    assert "bus_dead_letter_messages 3.0" in text
    assert "bus_retry_queue_messages 1.0" in text
    assert "bus_transport_connected 1.0" in text
    assert "bus_ready 0.0" in text  # no checks: not ready
    assert 'node="n1"' in text and 'transport="embedded"' in text


def test_cached_answers_within_its_timeout_and_keeps_the_last_answer() -> None:
    release = threading.Event()
    calls = []

    def slow() -> int:
        calls.append(1)
        if len(calls) > 1:
            release.wait(5)
        return len(calls)

    cached = Cached(slow, ttl=0.0, timeout=0.1, name="test")
    assert cached.get()[0] == 1
    started = time.monotonic()
    value, error, _ = cached.get()  # the second call hangs: the first answer is returned
    assert time.monotonic() - started < 1
    assert (value, error) == (1, None)
    cached.get()
    assert len(calls) == 2  # no second refresh while one is running
    release.set()


def test_health_fails_a_hanging_check_without_waiting_for_it() -> None:
    hang = threading.Event()
    health = Health(ttl=0.0, timeout=0.2)
    health.add("quick", lambda: "fine")
    health.add("hanging", lambda: str(hang.wait(5)))

    def broken() -> str:
        raise ConnectionError("not connected")

    health.add("broken", broken)
    started = time.monotonic()
    results = {r.name: r for r in health.results()}
    assert time.monotonic() - started < 1
    assert results["quick"].ok and results["quick"].detail == "fine"
    assert not results["hanging"].ok and results["hanging"].detail == "no answer yet"
    assert not results["broken"].ok and results["broken"].detail == "not connected"
    assert not health.ready()
    hang.set()
