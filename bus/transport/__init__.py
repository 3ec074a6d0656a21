"""Transports move messages between nodes: ``embedded://`` (SQLite) or ``amqp://`` (RabbitMQ).

``open_transport(url, node=…)`` picks the implementation from the URL scheme.
"""

from __future__ import annotations

from bus.core.errors import BusUnavailable
from bus.transport.base import (
    DeadLetter,
    Delivery,
    Message,
    Messaging,
    QueueStats,
    Subscription,
    Transport,
    TransportAdmin,
    TransportClosed,
    TransportStats,
    is_reply_queue,
    reply_queue,
    service_queue,
)

__all__ = [
    "DeadLetter",
    "Delivery",
    "Message",
    "Messaging",
    "QueueStats",
    "Subscription",
    "Transport",
    "TransportAdmin",
    "TransportClosed",
    "TransportStats",
    "is_reply_queue",
    "open_transport",
    "reply_queue",
    "service_queue",
]


def open_transport(url: str, *, node: str, durable_sync: str = "normal") -> Transport:
    """Open the transport named by ``url`` for node ``node``."""
    if url.startswith("embedded://"):
        from bus.transport.embedded.transport import EmbeddedTransport

        path = url.removeprefix("embedded://")
        return EmbeddedTransport(path, node=node, durable_sync=durable_sync)
    if url.startswith(("amqp://", "amqps://")):
        try:
            from bus.transport.rabbitmq.transport import RabbitTransport
        except ImportError:
            raise BusUnavailable("the RabbitMQ transport is not available in this build") from None
        return RabbitTransport(url, node=node)
    raise ValueError(f"unknown transport url scheme in {url.split('://')[0]!r}")
