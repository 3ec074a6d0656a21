"""``bus`` is a small facade: exactly the names it lists, each the real object of its module."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import bus

EXPORTED = {
    "Answer", "AskContext", "Asking", "BusError", "BusSettings", "BusUnavailable",
    "ConfigError", "Envelope", "Kind", "Node", "ProviderError", "RequestRefused", "Transport",
    "create_app", "load_settings", "open_transport",
}


def test_the_facade_lists_exactly_the_public_names() -> None:
    assert set(bus.__all__) == EXPORTED
    assert set(dir(bus)) >= EXPORTED


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_each_name_is_the_object_its_module_defines(name: str) -> None:
    value = getattr(bus, name)
    assert value is getattr(importlib.import_module(value.__module__), name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        bus.Nope  # noqa: B018


def test_importing_bus_loads_no_web_framework() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, bus; print('fastapi' in sys.modules)"],
        capture_output=True, text=True, check=True, timeout=60,
    )
    assert done.stdout.strip() == "False"
