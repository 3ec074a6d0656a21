"""The interagency data-exchange bus: what a program embedding or extending the bus uses.

The packages, lowest first (each imports only its own and lower ones; ``tests/test_layers.py``):

    core       envelope, errors, seal (sign/verify), replay guard, node SQLite files
    transport  the Transport protocol; embedded (SQLite) and rabbitmq (pika)
    config     BusSettings, loading a YAML file, the route table
    state      what the nodes of a bus share: seen ids, execution leases and results, rate-limit
               buckets (SQLite or PostgreSQL)
    ops        metrics, readiness, structured logs, dead letters as operators see them
    policy     access rights, rate limits, circuit breaker, retry, callbacks
    records    documents (request numbers), asynchronous results, retention, audit log
    inbox      requests answered by a person: the manual adapter, the inbox, the desk
    exchange   the client side, the provider side, and the one ask pipeline (Asking)
    node       a node wired from its settings
    gateway    HTTP (FastAPI) and SOAP, pages, bundles, asynchronous requests
    cli        the command line

The names below are imported on first use, so ``import bus`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bus.config.loader import ConfigError, load_settings
    from bus.config.settings import BusSettings
    from bus.core.envelope import Envelope, Kind
    from bus.core.errors import BusError, BusUnavailable, ProviderError, RequestRefused
    from bus.exchange.asking import Answer, AskContext, Asking
    from bus.gateway.app import create_app
    from bus.node.wiring import Node
    from bus.transport import Transport, open_transport

__all__ = [
    "Answer",
    "AskContext",
    "Asking",
    "BusError",
    "BusSettings",
    "BusUnavailable",
    "ConfigError",
    "Envelope",
    "Kind",
    "Node",
    "ProviderError",
    "RequestRefused",
    "Transport",
    "create_app",
    "load_settings",
    "open_transport",
]

_WHERE = {
    "Answer": "bus.exchange.asking",
    "AskContext": "bus.exchange.asking",
    "Asking": "bus.exchange.asking",
    "BusError": "bus.core.errors",
    "BusSettings": "bus.config.settings",
    "BusUnavailable": "bus.core.errors",
    "ConfigError": "bus.config.loader",
    "Envelope": "bus.core.envelope",
    "Kind": "bus.core.envelope",
    "Node": "bus.node.wiring",
    "ProviderError": "bus.core.errors",
    "RequestRefused": "bus.core.errors",
    "Transport": "bus.transport",
    "create_app": "bus.gateway.app",
    "load_settings": "bus.config.loader",
    "open_transport": "bus.transport",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bus' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
