"""Prometheus metrics of a node: every metric the bus exports is defined here, and only here.

``BusMetrics`` holds one ``CollectorRegistry``. Each ``Node`` takes one through its constructor
and makes a fresh one by default, so several nodes can run in one process (tests) without
sharing counters; ``GET /metrics`` on the node's gateway serves ``exposition``. Separate nodes
(processes with their own configs) are scraped each at its own ``/metrics`` (Prometheus adds
``instance``).

The worker processes of one node (``run_bus.py serve --workers N``, ``bus.cli.workers``) are one
endpoint: their supervisor points prometheus-client's multiprocess mode at a fresh directory
(``PROMETHEUS_MULTIPROC_DIR``, set before any worker imports prometheus-client) and each worker
makes ``BusMetrics(multiprocess_dir=…)``. Its counters, histograms and gauges then live in files
there, and ``exposition`` — whichever worker answers the scrape — is a ``MultiProcessCollector``
over all of them: counters and histograms summed over the workers (a dead worker's counts
stay), ``bus_inflight_requests`` and ``bus_provider_inflight_requests`` summed over the live
ones, ``bus_circuit_state`` the worst of the live ones. The scrape-time numbers (transport,
readiness, inbox), ``bus_build_info`` and the ``process_*``/``python_*`` collectors are the
answering worker's own.

Labels are bounded: member codes, service ids, error codes and fixed words; never message ids,
subjects, users or anything a request chose ("-" stands for "not known yet").

Metrics (``[labels]``; counters carry ``_total``, histograms ``_bucket``/``_count``/``_sum``):

Gateway (the node a member calls; client side of an exchange)

``bus_exchanges_total`` counter [client, service, outcome]
    Requests to ``/v1/services/…`` by how they ended: ``ok``, ``accepted`` (an asynchronous
    request taken, 202; its result is not counted here), ``idempotent-replay`` (the first
    answer given again for an ``Idempotency-Key``, nothing asked) or the error code of
    ``bus/core/errors.py`` (``access-denied``, ``provider-unavailable``, ``deadline-exceeded`` …).
    ``client`` is the authenticated member (``-`` when authentication failed), ``service`` the
    configured service id (``-`` when the path names none).
``bus_exchange_duration_seconds`` histogram [service]
    End-to-end time at the gateway of the requests that were sent to the provider (from the
    first byte of the request to the response), whatever the answer. Refusals before sending
    (401, 403, 413, 422) are not in it.
``bus_inflight_requests`` gauge [service]
    Requests the gateway is working on now.
``bus_access_refusals_total`` counter [side, client, service, reason]
    Requests refused for want of a right. ``side``: ``client`` (the gateway) or ``provider``
    (the provider's node re-checking). ``reason``: ``missing-token``, ``unknown-token``,
    ``not-hosted`` (401), ``no-right``, ``purpose-not-allowed``, ``not-yet-valid``,
    ``expired-right`` (403: a right outside its validity window).

``bus_anonymous_refusals_total`` counter [route, outcome]
    Requests refused before their caller was authenticated (``bus.gateway.throttle``): a
    missing or unknown token, a body refused before the token was looked at, a source over
    its throttle. ``route``: ``services``, ``bundles``, ``messages``, ``documents``,
    ``citizens``, ``catalog``, ``inbox``, ``verify``, ``soap`` or ``other``; ``outcome`` an
    error code.
    The audit log has one entry per source, minute and outcome for these (and a count).
``bus_throttled_total`` counter [area]
    Requests answered 429 by a per-source throttle: ``public`` (``/verify``, documents),
    ``sign-in`` (``/inbox`` sign-in attempts), ``anonymous`` (a source refused too often
    before authentication).
``bus_sign_in_lockouts_total`` counter
    Operator names locked out of ``/inbox`` from an address after repeated wrong passwords
    (``bus.gateway.inbox_session``; each is audited).

Stages of an exchange

``bus_stage_duration_seconds`` histogram [service, side, stage]
    ``side=client``: ``sign`` (the request), ``transport`` (publish until the reply is there:
    queueing, the provider's work and the way back), ``verify`` (the reply).
    ``side=provider``: ``verify`` (the request), ``validate`` (payload against the shared
    schema), ``adapter`` (the agency call, all attempts and their waits), ``sign`` (the answer).

Provider side (the node hosting a service's provider)

``bus_provider_requests_total`` counter [service, outcome]
    Deliveries of requests by how the worker ended them: ``ok``, an error code answered,
    ``retry-later`` (sent through the retry queues), ``duplicate`` (answered from memory or
    from the answer another worker recorded in the node state),
    ``reply-address-mismatch``/``reply-address-unsigned``/``reply-address-foreign``
    (dead-lettered, answered nowhere).
``bus_provider_inflight_requests`` gauge [service]
    Deliveries being worked on now: at most ``node.workers`` per service in each worker
    process, summed over the node's processes (``serve`` starts one per core by default).
``bus_adapter_calls_total`` counter [provider, service, outcome]
    Adapter calls (each attempt): ``ok``, ``no-data`` or the error code.
``bus_adapter_errors_total`` counter [provider, service, kind]
    Failed adapter calls (each attempt; ``no-data`` is an answer, not an error). ``kind`` is
    the error code (``provider-unavailable``, ``provider-timeout``, ``provider-rejected``,
    ``provider-invalid-answer``) or ``internal-error`` for an adapter bug.
``bus_adapter_retries_total`` counter [provider, service, kind]
    Attempts repeated within a delivery (``retry.attempts``), by the error that caused them.
``bus_redeliveries_total`` counter [service, reason]
    Requests handed to the transport's retry queues (``retry.redeliveries``), by error code;
    ``in-progress``: a copy of a request another worker or node still executes (its lease in
    the node state), sent round until that one's answer is recorded; ``reply-unsent``: an
    answer recorded but not sent (the broker away), sent again from the record by the next copy.
``bus_reexecutions_total`` counter [service]
    Requests executed again because the worker that held them (its lease in the node state)
    stopped before recording an answer: a killed process, a lost node, an answer whose audit
    entry could not be written. Each is also in the
    audit log (``side`` ``provider:re-executed``). The agency may have seen these twice.
``bus_dead_lettered_total`` counter [service, reason]
    Requests this node's workers dead-lettered: after the last redelivery (the error code),
    unreadable (``malformed-request``), ``expired``, or ``internal-error``.

Signatures

``bus_signature_failures_total`` counter [side, service, reason]
    Envelopes refused by verification. ``side=provider``: a request; ``side=client``: a reply.
    ``reason``: the signing layer's (``missing``, ``malformed``, ``unsupported-alg``,
    ``unknown-key``, ``bad-signature`` …), ``wrong-signer``, the certificate's (``revoked``,
    ``unknown-issuer``, ``wrong-member``, ``not-for-signing``, ``expired``, ``not-yet-valid``,
    ``not-valid-when-signed``), ``expired`` (time window) or ``replayed``.

Transport (collected when scraped, at most every 5 s, waiting at most 1 s for the broker;
absent when the transport could not be asked)

``bus_queue_depth_messages`` gauge [service]
    Messages deliverable now in the service's work queue (RabbitMQ: broker-wide).
``bus_queue_consumers`` gauge [service]
    Consumers of the service's work queue (RabbitMQ: broker-wide; embedded: this process).
``bus_retry_queue_messages`` gauge
    Messages waiting out a retry delay (RabbitMQ: in the retry queues this process has used).
``bus_dead_letter_messages`` gauge
    Messages in the dead letters (``run_bus.py dlq list``).
``bus_transport_connected`` gauge
    1 when the transport is connected now (``Transport.is_connected``), else 0.
``bus_transport_stats_errors_total`` counter
    Times the transport could not be asked for the numbers above.

Health (the checks of ``/health/ready``, cached 2 s)

``bus_ready`` gauge
    1 when every readiness check passes, else 0.
``bus_readiness_check`` gauge [check]
    1 per passing check, 0 per failing: ``transport``, ``trust-store``, ``audit``,
    ``provider:<service>``.
``bus_provider_up`` gauge [provider, service]
    1 when the adapter's probe reached the provider; only services with a probe configured.

``bus_circuit_state`` gauge [provider, service]
    Circuit breaker of each service this node provides (``bus.policy.breaker``): 0 closed,
    1 half-open, 2 open.

Operator inbox (``bus.inbox.desk``; the node's ``manual`` services, read when scraped)

``bus_inbox_open_tasks`` gauge [service]
    Tasks waiting for an operator (filed, not answered, not expired).
``bus_inbox_oldest_task_seconds`` gauge [service]
    Age of the oldest open task.
``bus_inbox_time_left_seconds`` gauge [service]
    Time until the first open task expires (its asker stops waiting and it can no longer be
    answered): the number an inbox alert watches.

Audit log (``bus.records.audit``)

``bus_audit_write_seconds`` histogram
    Time from handing one audit entry to the writer until it is durable (queueing for the
    next group commit included): what an answer or a refusal waits for its entry.

Build

``bus_build_info`` gauge (info) [version, python, node, transport]
    Always 1: the package version, Python version, node name and transport kind.

The standard ``process_*``, ``python_gc_*`` and ``python_info`` collectors are registered too;
the ``*_created`` series of prometheus-client are switched off.

The hot path never calls ``.labels()``: each labelled metric is a ``Family`` that keeps its
children by label values (all bounded) after the first use.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

from bus.ops.health import CheckResult
from bus.ops.scraped import ScrapedNumbers
from bus.transport import TransportStats

if TYPE_CHECKING:
    from bus.inbox.desk import Waiting

__all__ = ["LATENCY_BUCKETS", "STAGE_BUCKETS", "BusMetrics", "Family"]

# Exchanges take milliseconds to seconds (timeouts are 5-30 s); stages take 0.1 ms upwards.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
)  # fmt: skip
STAGE_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
AUDIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

C = TypeVar("C", Counter, Gauge, Histogram)

# No ``<name>_created`` series next to each counter and histogram: nothing here uses them and
# they double the series. (A process-wide switch of prometheus-client; the bus owns its process.)
disable_created_metrics()


class Family(Generic[C]):
    """A labelled metric whose children are kept by label values after their first use."""

    __slots__ = ("_children", "metric")
    metric: C
    _children: dict[tuple[str, ...], C]

    def __init__(self, metric: C) -> None:
        self.metric = metric
        self._children = {}

    def __call__(self, *values: str) -> C:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


def _version() -> str:
    try:
        return metadata.version("interagency-bus")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class BusMetrics:
    """The metrics of one node, in ``registry`` (a fresh ``CollectorRegistry`` by default).

    ``multiprocess_dir``: this process is one of several workers of a node, whose metrics
    ``exposition`` adds up from that directory (the module docstring says how)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, multiprocess_dir: Path | None = None
    ) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        # what only this process knows: in multiprocess mode beside the shared files
        local = r
        if multiprocess_dir is not None:
            if values.ValueClass is values.MutexValue:
                raise RuntimeError(
                    "prometheus-client was imported before PROMETHEUS_MULTIPROC_DIR was set: "
                    "its multiprocess mode cannot be used in this process"
                )
            local = CollectorRegistry()
            MultiProcessCollector(local, path=str(multiprocess_dir))
        self.exposition = local
        """The registry ``GET /metrics`` serves."""
        ProcessCollector(registry=local)
        PlatformCollector(registry=local)
        GCCollector(registry=local)

        def counter(name: str, doc: str, *labels: str) -> Family[Counter]:
            return Family(Counter(name, doc, labels, registry=r))

        def gauge(
            name: str, doc: str, *labels: str, workers: Literal["livesum", "livemax"]
        ) -> Family[Gauge]:
            # ``workers``: how the workers' values add up in multiprocess mode
            return Family(Gauge(name, doc, labels, registry=r, multiprocess_mode=workers))

        def histogram(
            name: str, doc: str, buckets: Sequence[float], *labels: str
        ) -> Family[Histogram]:
            return Family(Histogram(name, doc, labels, buckets=buckets, registry=r))

        # gateway
        self.exchanges = counter(
            "bus_exchanges", "Requests to the gateway by outcome", "client", "service", "outcome"
        )
        self.exchange_seconds = histogram(
            "bus_exchange_duration_seconds",
            "End-to-end time at the gateway of the requests sent to the provider",
            LATENCY_BUCKETS,
            "service",
        )
        self.inflight = gauge(
            "bus_inflight_requests", "Requests the gateway works on", "service", workers="livesum"
        )
        self.access_refusals = counter(
            "bus_access_refusals",
            "Requests refused for want of a right",
            "side",
            "client",
            "service",
            "reason",
        )
        self.anonymous_refusals = counter(
            "bus_anonymous_refusals", "Requests refused before authentication", "route", "outcome"
        )
        self.throttled = counter("bus_throttled", "Requests refused by a per-source throttle",
                                 "area")
        self.sign_in_lockouts = Counter(
            "bus_sign_in_lockouts", "Operator names locked out after wrong passwords",
            registry=r,
        )
        # stages
        self.stage_seconds = histogram(
            "bus_stage_duration_seconds",
            "Time spent in one stage of an exchange",
            STAGE_BUCKETS,
            "service",
            "side",
            "stage",
        )
        # provider side
        self.provider_requests = counter(
            "bus_provider_requests",
            "Deliveries of requests by how the worker ended them",
            "service",
            "outcome",
        )
        self.provider_inflight = gauge(
            "bus_provider_inflight_requests",
            "Deliveries being worked on",
            "service",
            workers="livesum",
        )
        self.adapter_calls = counter(
            "bus_adapter_calls", "Adapter calls (each attempt)", "provider", "service", "outcome"
        )
        self.adapter_errors = counter(
            "bus_adapter_errors", "Failed adapter calls (each attempt)", "provider", "service",
            "kind",
        )  # fmt: skip
        self.adapter_retries = counter(
            "bus_adapter_retries", "Adapter attempts repeated within a delivery", "provider",
            "service", "kind",
        )  # fmt: skip
        self.redeliveries = counter(
            "bus_redeliveries", "Requests sent through the retry queues", "service", "reason"
        )
        self.reexecutions = counter(
            "bus_reexecutions", "Requests executed again after their worker's lease ran out",
            "service",
        )  # fmt: skip
        self.dead_lettered = counter(
            "bus_dead_lettered", "Requests this node's workers dead-lettered", "service", "reason"
        )
        # signatures
        self.signature_failures = counter(
            "bus_signature_failures", "Envelopes refused by verification", "side", "service",
            "reason",
        )  # fmt: skip
        # transport (its gauges come from ScrapedNumbers when scraped)
        self.transport_stats_errors = Counter(
            "bus_transport_stats_errors",
            "Times the transport could not be asked for its numbers",
            registry=r,
        )
        self.circuit_state = gauge(
            "bus_circuit_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open",
            "provider",
            "service",
            workers="livemax",
        )
        # audit log
        self.audit_write_seconds = Histogram(
            "bus_audit_write_seconds",
            "Time until one audit entry is durable",
            buckets=AUDIT_BUCKETS,
            registry=r,
        )
        self.build = Info(
            "bus_build", "Version, Python, node name and transport", registry=local
        )
        self._set_build(node="", transport="")
        self._live = ScrapedNumbers()
        local.register(self._live)

    def _set_build(self, *, node: str, transport: str) -> None:
        self.build.info(
            {
                "version": _version(),
                "python": platform.python_version(),
                "node": node,
                "transport": transport,
            }
        )

    def watch(
        self,
        *,
        node: str,
        transport: str,
        stats: Callable[[], TransportStats | None],
        connected: Callable[[], bool],
        readiness: Callable[[], Sequence[CheckResult]],
        queues: dict[str, str],
        inbox: Callable[[], Sequence[Waiting]] = list,
    ) -> None:
        """Where the scrape-time numbers come from (set by ``Node.start``)."""
        self._set_build(node=node, transport=transport)
        live = self._live
        live.stats, live.connected, live.readiness = stats, connected, readiness
        live.queues = dict(queues)
        live.inbox = inbox

    def names(self) -> set[str]:
        """The metric names this registry exports (as in the exposition, with suffixes)."""
        names: set[str] = set()
        for family in self.registry.collect():
            names.update(s.name for s in family.samples)
            names.add(family.name)
        for family in self._live.describe():
            names.add(family.name)
        return names
