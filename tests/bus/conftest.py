"""Fixtures shared by the tests of the bus package."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def no_bus_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests decide the environment: drop any BUS_ variable the runner happens to have."""
    for name in list(os.environ):
        if name.upper().startswith("BUS_"):
            monkeypatch.delenv(name)
