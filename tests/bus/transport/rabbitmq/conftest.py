"""Fixtures of the RabbitMQ transport's own tests: the broker seen directly, a node name and a
queue of each test's own (deleted afterwards), and transports closed after the test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bus.transport.rabbitmq.transport import RabbitTransport
from tests.bus.transport.rabbitmq.broker import URL, Broker


@pytest.fixture
def broker() -> Iterator[Broker]:
    b = Broker()
    yield b
    b.close()


@pytest.fixture
def node(broker: Broker) -> str:
    name = f"test-{uuid.uuid4().hex[:8]}"
    broker.queues.append(f"reply.{name}")
    return name


@pytest.fixture
def opened() -> Iterator[list[RabbitTransport]]:
    transports: list[RabbitTransport] = []
    yield transports
    for t in reversed(transports):
        t.close()


@pytest.fixture
def open_transport(node: str, opened: list[RabbitTransport]) -> Callable[..., RabbitTransport]:
    def open_(**kw: Any) -> RabbitTransport:
        t = RabbitTransport(URL, node=node, **kw)
        opened.append(t)
        return t

    return open_


@pytest.fixture
def transport(open_transport: Callable[..., RabbitTransport]) -> RabbitTransport:
    return open_transport()


@pytest.fixture
def queue(broker: Broker) -> str:
    name = f"test.{uuid.uuid4().hex}"
    broker.queues.append(name)
    return name

