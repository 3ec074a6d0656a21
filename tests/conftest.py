"""Fixtures shared across test folders: the demo stack on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from demo.scenario import DemoStack, start_stack


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
