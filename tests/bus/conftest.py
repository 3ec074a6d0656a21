"""Fixtures shared by the tests of the bus package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from signing import generate_member_key


@pytest.fixture
def no_bus_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests decide the environment: drop any BUS_ variable the runner happens to have."""
    for name in list(os.environ):
        if name.upper().startswith("BUS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def cfg_dir(tmp_path: Path) -> Path:
    """A config folder with the keys of the members the config tests name."""
    directory = tmp_path / "etc"
    for member in ("portal", "civil-registry"):
        generate_member_key(directory / "keys", member)
    return directory
