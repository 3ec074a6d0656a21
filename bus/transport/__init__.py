"""Transports move messages between nodes: ``embedded://`` (SQLite) or ``amqp://`` (RabbitMQ).

``open_transport(url, node=…)`` picks the implementation from the URL scheme.
"""

from bus.transport.base import (
    DeadLetter,
    Delivery,
    Message,
    QueueStats,
    Subscription,
    Transport,
    TransportClosed,
    TransportStats,
    is_reply_queue,
    open_transport,
    reply_queue,
    service_queue,
)

__all__ = [
    "DeadLetter",
    "Delivery",
    "Message",
    "QueueStats",
    "Subscription",
    "Transport",
    "TransportClosed",
    "TransportStats",
    "is_reply_queue",
    "open_transport",
    "reply_queue",
    "service_queue",
]
