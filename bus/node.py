"""A node: one running bus process, wired from its settings.

``Node(settings)`` loads the keys of the members it hosts and the trust store, opens the
transport, and builds the router, access policy, the client-side ``Exchanger`` and, for each
service whose provider it hosts, an adapter and a ``ProviderWorker`` consuming that service's
queue. ``start``/``stop`` bracket its life; ``gateway_http.create_app(node)`` serves it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

from adapters import Adapter, AdapterContext, build_adapter
from bus.access import AccessPolicy
from bus.config import BusSettings
from bus.envelope import utcnow
from bus.exchange import Exchanger
from bus.provider import ProviderWorker
from bus.router import Router
from bus.seal import Clock, Seal
from bus.transport import Subscription, Transport, open_transport
from signing import JwsSigner, StaticTrustStore, load_private_key

__all__ = ["Node"]

log = logging.getLogger("bus.node")


def _load_seal(settings: BusSettings, clock: Clock) -> Seal:
    trust = StaticTrustStore.from_files({m: s.public_key for m, s in settings.members.items()})
    signers = {
        member: JwsSigner(member, load_private_key(settings.node.keys_dir / f"{member}.key"))
        for member in settings.node.hosts
    }
    return Seal(signers, trust, clock=clock)


def _instance_name(name: str, url: str) -> str:
    """The name this process answers to on the transport (its reply queue).

    On a broker several processes may run with one config, so each gets its own reply queue
    (``<name>.<host>.<pid>``; the broker deletes it some time after the process is gone). The
    embedded transport belongs to one process, which keeps the configured name across restarts.
    """
    if url.startswith("embedded://"):
        return name
    return f"{name}.{socket.gethostname()}.{os.getpid()}"


class Node:
    def __init__(
        self,
        settings: BusSettings,
        *,
        transport: Transport | None = None,
        clock: Clock = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.name = settings.node.name
        self.seal = _load_seal(settings, clock)
        self.router = Router(settings)
        self.access = AccessPolicy(settings.access)
        self._transport = transport
        self._sleep = sleep
        self._adapters: list[Adapter] = []
        self._subscriptions: list[Subscription] = []
        self.exchanger: Exchanger | None = None
        self.started = False

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            raise RuntimeError("node not started")
        return self._transport

    def start(self) -> None:
        if self.started:
            return
        if self._transport is None:
            url = self.settings.transport_url()
            self._transport = open_transport(
                url,
                node=_instance_name(self.name, url),
                durable_sync=self.settings.transport.durable_sync,
            )
        self.exchanger = Exchanger(seal=self.seal, access=self.access, transport=self.transport)
        for route in self.router.routes():
            self.transport.declare(route.queue)
        for route in self.router.provided_by(self.settings.node.hosts):
            adapter = build_adapter(
                route.settings.adapter.kind,
                route.settings.adapter.options(),
                AdapterContext(route.service, route.request_model, route.response_model),
            )
            self._adapters.append(adapter)
            worker = ProviderWorker(
                route,
                adapter,
                seal=self.seal,
                access=self.access,
                transport=self.transport,
                sleep=self._sleep,
            )
            self._subscriptions.append(
                self.transport.consume(
                    route.queue, worker.handle, prefetch=self.settings.node.workers
                )
            )
            log.info("serving", extra={"bus": {"service": route.service, "node": self.name}})
        self.started = True

    def stop(self) -> None:
        for sub in self._subscriptions:
            sub.cancel()
        self._subscriptions.clear()
        for adapter in self._adapters:
            adapter.close()
        self._adapters.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self.started = False
