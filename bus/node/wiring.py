"""A node: one running bus process, wired from its settings.

``Node(settings)`` loads the keys of the members it hosts and the trust store, opens the
transport, and builds the router, access policy, the client-side ``Exchanger`` and, for each
service whose provider it hosts, an adapter and a ``ProviderWorker`` consuming that service's
queue. ``start``/``stop`` bracket its life; ``gateway_http.create_app(node)`` serves it.

``metrics`` (``bus.ops.metrics.BusMetrics``, a fresh registry by default) is handed to the
exchanger and the workers; ``health`` holds the readiness checks ``start`` registers
(``bus.ops.health``), which ``/health/ready`` and ``/metrics`` report.

``state`` (``bus.state``) is what the node shares with the other nodes of its bus (``state:``;
by default ``state.db`` beside its other files): the replay guard, the workers' leases and the
gateway's rate limits and ``Idempotency-Key`` results are kept there, and with a PostgreSQL
state the documents and asynchronous results go into that database too.

``retention`` (``bus.records.retention.Retention``) deletes signed answers and asynchronous results
past their retention period: a daemon thread from ``start`` (at once, then hourly) to ``stop``.

``worker``: this process is worker ``worker`` (0, 1, …) of the node's ``serve --workers N``
(``bus.cli.workers``; ``None``: the node's only process). The workers share the node's files and
transport; each has its own reply queue (on the embedded transport ``<name>.w<worker>``, kept by
the worker that replaces it). Only the ``primary`` process — worker 0, or the only one — runs the
node's once-per-node jobs: the retention purge, the operator inbox's resender, and resuming the
asynchronous callbacks left undelivered (``bus.gateway.asynchronous``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from adapters import Adapter, AdapterContext, Deadline, build_adapter
from bus.config.routes import Router
from bus.config.settings import BusSettings
from bus.core.envelope import utcnow
from bus.core.replay import ReplayGuard
from bus.core.seal import Clock, Seal
from bus.exchange.client import Exchanger
from bus.exchange.leases import Leases
from bus.exchange.provider import ProviderWorker
from bus.inbox.desk import InboxDesk, Waiting, manual_routes
from bus.node.trust import NodeTrust, load_signers, load_trust
from bus.ops.health import Cached, CheckResult, Health
from bus.ops.metrics import BusMetrics
from bus.policy.access import AccessPolicy
from bus.policy.breaker import CircuitBreaker
from bus.records.audit import AuditLog, AuditNotConfigured, open_audit_store
from bus.records.documents import DocumentStore
from bus.records.retention import Retention
from bus.state import NodeState, open_state
from bus.transport import Subscription, Transport, TransportStats, open_transport

__all__ = ["Node"]

log = logging.getLogger("bus.node")


_PROBE_TIMEOUT_S = 2.0  # an adapter's readiness probe
_STATS_TTL_S, _STATS_TIMEOUT_S, _STATS_MAX_AGE_S = 5.0, 1.0, 30.0  # transport numbers for /metrics


def _load_seal(settings: BusSettings, trust: NodeTrust, clock: Clock) -> Seal:
    skew = dt.timedelta(seconds=settings.trust.max_clock_skew_s)
    return Seal(load_signers(settings, trust), trust, clock=clock, max_skew=skew)


def _documents_path(settings: BusSettings) -> Path:
    """``documents.path`` (set by ``load_settings``), else next to the embedded queue file."""
    if settings.documents.path is not None:
        return settings.documents.path
    url = settings.transport_url()
    if url.startswith("embedded://"):
        return Path(url.removeprefix("embedded://")).with_name("documents.db")
    return Path("documents.db")


def _state_location(settings: BusSettings) -> str:
    """``state`` (set or defaulted by ``load_settings``), else ``state.db`` by the documents."""
    if settings.state is not None:
        return settings.state.get_secret_value()
    return f"sqlite:///{_documents_path(settings).with_name('state.db')}"


def _open_audit(settings: BusSettings, clock: Clock, metrics: BusMetrics) -> AuditLog:
    """The node's audit log; a node does not run without the key of its subject hashes."""
    secret = settings.audit.secret
    if secret is None:
        raise AuditNotConfigured(
            "audit.secret is not set: the audit log needs the key of its subject hashes "
            "(set BUS_AUDIT__SECRET, at least 16 characters, the same on every node)"
        )
    url = settings.audit.url
    address = (
        f"sqlite:///{_documents_path(settings).with_name('audit.db')}"
        if url is None
        else url.get_secret_value()
    )
    store = open_audit_store(address, table=settings.audit.table, clock=clock)
    return AuditLog(
        store,
        secret=secret.get_secret_value().encode(),
        batch_max=settings.audit.batch_max,
        observe=metrics.audit_write_seconds.observe,
    )


def _instance_name(name: str, url: str, worker: int | None = None) -> str:
    """The name this process answers to on the transport (its reply queue).

    On a broker several processes may run with one config, so each gets its own reply queue
    (``<name>.<host>.<pid>``; the broker deletes it some time after the process is gone). The
    embedded transport belongs to one node on one machine, which keeps the configured name
    across restarts (``<name>.w<worker>`` for each of its workers).
    """
    if url.startswith("embedded://"):
        return name if worker is None else f"{name}.w{worker}"
    return f"{name}.{socket.gethostname()}.{os.getpid()}"


class Node:
    def __init__(
        self,
        settings: BusSettings,
        *,
        transport: Transport | None = None,
        clock: Clock = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        metrics: BusMetrics | None = None,
        worker: int | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.node.name
        self.worker = worker
        self.instance = self.name  # its name on the transport, set by start (leases' holder)
        self._leases: Leases | None = None
        self.metrics = metrics if metrics is not None else BusMetrics()
        self.health = Health()
        self.trust = load_trust(settings, clock)
        self.seal = _load_seal(settings, self.trust, clock)
        self.router = Router(settings)
        self.access = AccessPolicy(settings.access, clock=clock)
        self.state: NodeState = open_state(
            _state_location(settings), clock=lambda: clock().timestamp()
        )
        try:
            self.audit = _open_audit(settings, clock, self.metrics)
        except BaseException:
            self.state.close()
            raise
        self.replay = ReplayGuard(settings.trust.replay_window, clock=clock, store=self.state)
        self.documents = DocumentStore(
            _documents_path(settings),
            prefix=settings.documents.prefix,
            clock=clock,
            shared=settings.shared_state(),
            subject_key=self.audit.subject_key,  # whom a document is about, never the PINFL
        )
        self.retention = Retention(settings, self.documents, clock=clock, state=self.state)
        self._transport = transport
        self._sleep = sleep
        self._adapters: list[Adapter] = []
        self._subscriptions: list[Subscription] = []
        self.exchanger: Exchanger | None = None
        self.inbox: InboxDesk | None = None
        self.started = False

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            raise RuntimeError("node not started")
        return self._transport

    def start(self) -> None:
        if self.started:
            return
        url = self.settings.transport_url()
        instance = self.instance = _instance_name(self.name, url, self.worker)
        if self._transport is None:
            self._transport = open_transport(
                url, node=instance, durable_sync=self.settings.transport.durable_sync
            )
        if url.startswith("embedded://"):  # this process is the node: its last run is gone
            ended = self.state.abandon(instance)
            if ended:
                log.warning("requests the last run was executing are taken over",
                            extra={"bus": {"node": self.name, "leases": ended}})
        self.exchanger = Exchanger(
            seal=self.seal,
            access=self.access,
            transport=self.transport,
            metrics=self.metrics,
            # Replies need no shared memory: a reply is taken only by the process waiting for
            # its request (or, asynchronous, once by the row it finishes); a write per reply
            # into the state would buy nothing.
            replay=ReplayGuard(self.settings.trust.replay_window, clock=self.seal.clock),
        )
        for route in self.router.routes():
            self.transport.declare(route.queue)
        self.health.add("transport", self._check_transport)
        self.health.add("trust-store", self._check_trust)
        self.health.add("audit", self.audit.store.check)
        self.health.add("state", self.state.check)
        # one heartbeat keeps every request lease of this process's workers alive
        self._leases = Leases(self.state, holder=instance, sleep=self._sleep)
        for route in self.router.provided_by(self.settings.node.hosts):
            adapter = build_adapter(
                route.settings.adapter.kind,
                route.settings.adapter.options(),
                AdapterContext(
                    route.service,
                    route.request_model,
                    route.response_model,
                    data_dir=self.data_dir,
                ),
            )
            self._adapters.append(adapter)
            worker = ProviderWorker(
                route,
                adapter,
                seal=self.seal,
                access=self.access,
                transport=self.transport,
                sleep=self._sleep,
                metrics=self.metrics,
                replay=self.replay,
                audit=self.audit,
                leases=self._leases,
                breaker=CircuitBreaker(
                    route.settings.breaker,
                    name=route.service,
                    on_change=self.metrics.circuit_state(route.provider, route.service).set,
                ),
            )
            probe = getattr(adapter, "readiness_probe", lambda: None)()
            if probe is not None:
                self.health.add(f"provider:{route.service}", _probe_check(probe))
            self._subscriptions.append(
                self.transport.consume(
                    route.queue, worker.handle, prefetch=self.settings.node.workers
                )
            )
            log.info("serving", extra={"bus": {"service": route.service, "node": self.name}})
        if manual_routes(self.router, self.settings.node.hosts):
            self.inbox = self.open_inbox()
            if self.primary:
                self.inbox.resend_unsent()  # answers an operator gave while no node was running
                self.inbox.start_resender()  # and those the transport could not take at once
        self._watch()
        if self.primary:
            self.retention.start()
        self.started = True

    @property
    def primary(self) -> bool:
        """True in the process that runs the node's once-per-node jobs (see the docstring)."""
        return self.worker is None or self.worker == 0

    @property
    def data_dir(self) -> Path:
        """The folder of the node's own files (documents, audit, inbox, async results)."""
        return self.documents.path.parent

    def open_inbox(self) -> InboxDesk:
        """The operator's desk for this node's ``manual`` services (``bus.inbox.desk``)."""
        return InboxDesk(
            router=self.router,
            hosts=self.settings.node.hosts,
            data_dir=self.data_dir,
            seal=self.seal,
            access=self.access,
            audit=self.audit,
            transport=self.transport,
        )

    def readiness(self) -> list[CheckResult]:
        """The readiness checks' latest results (each at most ``Health.ttl`` old)."""
        if not self.started:
            return [CheckResult("node", False, "not started")]
        return self.health.results()

    def _check_transport(self) -> str:
        transport = self._transport
        if transport is None or not transport.is_connected():
            raise ConnectionError("not connected")
        return "connected"

    def _check_trust(self) -> str:
        return self.trust.readiness(set(self.settings.members), set(self.settings.node.hosts))

    def _watch(self) -> None:
        """Point the scrape-time metrics at this node's transport and health."""
        queues = {route.queue: route.service for route in self.router.routes()}
        transport = self.transport

        def count() -> TransportStats:
            try:
                return transport.stats(list(queues))
            except Exception:
                self.metrics.transport_stats_errors.inc()
                raise

        cached = Cached(count, ttl=_STATS_TTL_S, timeout=_STATS_TIMEOUT_S, name="transport-stats")

        def stats() -> TransportStats | None:
            value, _, age = cached.get()
            return value if age <= _STATS_MAX_AGE_S else None

        url = self.settings.transport_url()
        self.metrics.watch(
            node=self.name,
            transport="embedded" if url.startswith("embedded://") else "rabbitmq",
            stats=stats,
            connected=lambda: self.started and transport.is_connected(),
            readiness=self.readiness,
            queues=queues,
            inbox=self._inbox_waiting,
        )

    def _inbox_waiting(self) -> list[Waiting]:
        inbox = self.inbox
        if inbox is None or not self.started:
            return []
        try:
            return inbox.waiting()
        except Exception:  # stopping meanwhile, or the file unreadable: no numbers this scrape
            log.warning("operator inbox not readable for metrics", exc_info=True)
            return []

    def stop(self) -> None:
        self.started = False  # not ready from the moment it starts stopping
        for sub in self._subscriptions:
            sub.cancel()
        self._subscriptions.clear()
        if self._leases is not None:
            self._leases.close()
            self._leases = None
        for adapter in self._adapters:
            adapter.close()
        self._adapters.clear()
        if self.inbox is not None:
            self.inbox.close()
            self.inbox = None
        self.health.clear()
        self.retention.stop()  # before the store it purges is closed
        self.documents.close()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self.audit.close()  # after the workers: what they queued is written first
        self.state.close()  # opened again if the node starts again


def _probe_check(probe: Callable[[Deadline], None]) -> Callable[[], str]:
    def check() -> str:
        probe(Deadline.after(_PROBE_TIMEOUT_S))
        return "reachable"

    return check
