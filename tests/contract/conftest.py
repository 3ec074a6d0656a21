"""The transports the contract suite runs against, and a handler that records deliveries.

Each implementation is one ``pytest.param`` in ``FACTORIES``: a callable ``(tmp_path, node)``
returning an open ``Transport``. Calling it again with the same arguments after ``close`` must
reach the same queues: that is how the suite simulates a node restart. Tests use fresh queue and
node names (uuid) so that a run against a shared broker is isolated from other runs.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bus.transport import Delivery, Message, Transport
from bus.transport.embedded.transport import EmbeddedTransport
from tests.live import AMQP_URL

Factory = Callable[[Path, str], Transport]


def _embedded(tmp_path: Path, node: str) -> Transport:
    return EmbeddedTransport(tmp_path / "queues.db", node=node, poll_interval_s=0.02)


def _rabbitmq(tmp_path: Path, node: str) -> Transport:
    from bus.transport.rabbitmq.transport import RabbitTransport

    # Queues left unused for a minute go (x-expires): the suite does not delete its queues, and
    # each quorum queue holds broker file handles.
    url = AMQP_URL
    return RabbitTransport(url, node=node, queue_expires_s=60, reply_queue_expires_s=60)


FACTORIES = [
    pytest.param(_embedded, id="embedded"),
    pytest.param(_rabbitmq, id="rabbitmq", marks=pytest.mark.rabbitmq),
]


class TransportOpener:
    """Opens transports of one implementation (again after ``close``: a restart).

    ``opener()`` opens one for this test's node, ``opener("other")`` for another node;
    every transport opened is closed at teardown.
    """

    def __init__(self, factory: Factory, tmp_path: Path) -> None:
        self._factory = factory
        self._tmp_path = tmp_path
        self._prefix = f"test-{uuid.uuid4().hex[:8]}"
        self.node = f"{self._prefix}-node"
        self._opened: list[Transport] = []

    def __call__(self, node: str | None = None) -> Transport:
        name = f"{self._prefix}-{node}" if node else self.node
        transport = self._factory(self._tmp_path, name)
        self._opened.append(transport)
        return transport

    def close_all(self) -> None:
        for transport in reversed(self._opened):
            transport.close()


@pytest.fixture(params=FACTORIES)
def transport_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TransportOpener]:
    opener = TransportOpener(request.param, tmp_path)
    try:
        yield opener
    finally:
        opener.close_all()


@pytest.fixture
def transport(transport_factory: TransportOpener) -> Transport:
    return transport_factory()


@pytest.fixture
def queue() -> str:
    return f"test.{uuid.uuid4().hex}"


def message(body: bytes = b"payload", **kw: object) -> Message:
    """A message with a fresh id."""
    return Message(body=body, message_id=str(uuid.uuid4()), **kw)  # type: ignore[arg-type]


def eventually(check: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait until ``check()`` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class Inbox:
    """A consumer handler that records each delivery, then passes it to ``settle``.

    ``settle`` defaults to acking through ``Delivery.process()``.
    """

    def __init__(self, settle: Callable[[Delivery], None] | None = None) -> None:
        self.deliveries: list[Delivery] = []
        self.times: list[float] = []
        self._settle = settle or _ack
        self._cond = threading.Condition()

    def __call__(self, delivery: Delivery) -> None:
        with self._cond:
            self.deliveries.append(delivery)
            self.times.append(time.monotonic())
            self._cond.notify_all()
        self._settle(delivery)

    def wait_for(self, n: int, timeout: float = 2.0) -> list[Delivery]:
        """The first ``n`` deliveries, once there are that many."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.deliveries) >= n, timeout)
            assert ok, f"expected {n} deliveries, got {len(self.deliveries)}"
            return self.deliveries[:n]

    def count_after(self, seconds: float) -> int:
        """How many deliveries there are after waiting ``seconds``."""
        time.sleep(seconds)
        with self._cond:
            return len(self.deliveries)


def _ack(delivery: Delivery) -> None:
    with delivery.process():
        pass
