"""Fixtures shared across test folders: the demo stack on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from demo.scenario import DemoStack, start_stack


@pytest.fixture(autouse=True)
def _restore_log_handlers() -> Iterator[None]:
    """A test that configures logging (``serve``, ``demo`` through CliRunner) points the bus's
    loggers at a stream that is closed after it; put the previous handlers back."""
    from bus.logs import _LOGGERS

    saved = {name: logging.getLogger(name) for name in _LOGGERS}
    before = {name: (list(lg.handlers), lg.level, lg.propagate) for name, lg in saved.items()}
    yield
    for name, logger in saved.items():
        handlers, level, propagate = before[name]
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    """Demo agencies and one node on the embedded transport, for the tests of one module."""
    stack = start_stack(tmp_path_factory.mktemp("demo"))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def portal(demo_stack: DemoStack) -> Iterator[httpx.Client]:
    """An HTTP client authenticated as the portal, asking on behalf of one official."""
    headers = {"Authorization": f"Bearer {demo_stack.token}", "X-Bus-User": "officer-17"}
    with httpx.Client(base_url=demo_stack.gateway.url, headers=headers, timeout=10) as client:
        yield client


# Queues that tests create on the shared broker, deleted when the session ends: every quorum
# queue holds broker file handles, and leftovers from many runs exhaust them.
_TEST_QUEUE_PREFIXES = ("test-", "test.", "reply.test-", "svc.test.", "reply.retry-test-")


def pytest_sessionfinish(session: pytest.Session) -> None:
    ran_rabbitmq = any(item.get_closest_marker("rabbitmq") for item in session.items)
    if not ran_rabbitmq:
        return
    import shutil
    import subprocess

    import pika

    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        return
    listed = subprocess.run(
        [rabbitmqctl, "-q", "list_queues", "name", "--no-table-headers"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    names = [
        n.strip() for n in listed.stdout.splitlines() if n.strip().startswith(_TEST_QUEUE_PREFIXES)
    ]
    if not names:
        return
    connection = pika.BlockingConnection(
        pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F")
    )
    try:
        channel = connection.channel()
        for name in names:
            channel.queue_delete(name)
    finally:
        connection.close()
