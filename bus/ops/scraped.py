"""The numbers a node reads when ``/metrics`` is scraped, not counted as it works: its queues'
depth and consumers, retrying and dead letters (the transport's statistics), the transport's
connection, readiness and each check (provider probes as ``bus_provider_up``), and the operator
inbox's open tasks. ``bus.ops.metrics`` documents each metric; ``BusMetrics`` registers this
collector and ``BusMetrics.watch`` gives it the functions to ask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bus.core.envelope import provider_of
from bus.ops.health import CheckResult
from bus.transport import TransportStats

if TYPE_CHECKING:
    from bus.inbox.desk import Waiting

__all__ = ["ScrapedNumbers"]


class ScrapedNumbers(Collector):
    """The numbers asked for when scraped: transport statistics, readiness and the inbox.
    ``BusMetrics.watch`` tells it where to ask."""

    def __init__(self) -> None:
        self.stats: Callable[[], TransportStats | None] = lambda: None
        self.connected: Callable[[], bool] = lambda: False
        self.readiness: Callable[[], Sequence[CheckResult]] = list
        self.queues: dict[str, str] = {}  # work queue -> service
        self.inbox: Callable[[], Sequence[Waiting]] = list

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "bus_queue_depth_messages",
                "Messages deliverable now in the service's work queue",
                labels=["service"],
            ),
            GaugeMetricFamily(
                "bus_queue_consumers", "Consumers of the service's work queue", labels=["service"]
            ),
            GaugeMetricFamily("bus_retry_queue_messages", "Messages waiting out a retry delay"),
            GaugeMetricFamily("bus_dead_letter_messages", "Messages in the dead letters"),
            GaugeMetricFamily("bus_transport_connected", "1 when the transport is connected"),
            GaugeMetricFamily("bus_ready", "1 when every readiness check passes"),
            GaugeMetricFamily(
                "bus_readiness_check", "1 per passing readiness check", labels=["check"]
            ),
            GaugeMetricFamily(
                "bus_provider_up",
                "1 when the adapter's probe reached the provider",
                labels=["provider", "service"],
            ),
            GaugeMetricFamily(
                "bus_inbox_open_tasks", "Tasks waiting for an operator", labels=["service"]
            ),
            GaugeMetricFamily(
                "bus_inbox_oldest_task_seconds", "Age of the oldest open task", labels=["service"]
            ),
            GaugeMetricFamily(
                "bus_inbox_time_left_seconds",
                "Time until the first open task expires",
                labels=["service"],
            ),
        )

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        depth, consumers, retrying, dead, connected, ready, checks, up = families[:8]
        open_tasks, oldest, time_left = families[8:]
        for waiting in self.inbox():
            open_tasks.add_metric([waiting.service], waiting.open_tasks)
            oldest.add_metric([waiting.service], waiting.oldest_s)
            time_left.add_metric([waiting.service], waiting.time_left_s)
        connected.add_metric([], 1.0 if self.connected() else 0.0)
        stats = self.stats()
        if stats is not None:
            for queue, service in self.queues.items():
                q = stats.queues.get(queue)
                if q is not None:
                    depth.add_metric([service], q.depth)
                    consumers.add_metric([service], q.consumers)
            retrying.add_metric([], stats.retrying)
            dead.add_metric([], stats.dead_letters)
        results = self.readiness()
        ready.add_metric([], 1.0 if results and all(r.ok for r in results) else 0.0)
        for r in results:
            checks.add_metric([r.name], 1.0 if r.ok else 0.0)
            if r.name.startswith("provider:"):
                service = r.name.removeprefix("provider:")
                up.add_metric([provider_of(service), service], 1.0 if r.ok else 0.0)
        yield from families
