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
    from bus.ops.logs import _LOGGERS

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


def _runs_rabbitmq(session: pytest.Session) -> bool:
    return any(item.get_closest_marker("rabbitmq") for item in session.items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Give a run with ``rabbitmq`` tests its own virtual host on the shared broker."""
    if _runs_rabbitmq(session) and not session.config.option.collectonly:
        from tests.live import create_vhost

        create_vhost()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Delete this run's virtual host, and with it every queue the run's tests made."""
    if _runs_rabbitmq(session) and not session.config.option.collectonly:
        from tests.live import delete_vhost

        delete_vhost()
