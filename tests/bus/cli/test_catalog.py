"""``run_bus.py catalog`` on the example configuration: it needs no keys, and ``--json`` is the
catalogue the node serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bus.cli.app import app
from bus.config.loader import load_settings
from bus.gateway.catalog import build_catalog

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "bus.yaml"
pytestmark = pytest.mark.usefixtures("no_bus_environment")


def test_the_example_configuration_s_catalogue() -> None:
    settings = load_settings(EXAMPLE, check_references=False)
    result = CliRunner().invoke(app, ["catalog", "--json", "-c", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == build_catalog(settings).model_dump(mode="json")
    table = CliRunner().invoke(app, ["catalog", "-c", str(EXAMPLE)])
    assert table.exit_code == 0 and f"{len(settings.services)} services" in table.output
    for sid in settings.services:
        assert sid in table.output


def test_every_example_service_is_described_in_three_languages() -> None:
    for sid, svc in load_settings(EXAMPLE, check_references=False).services.items():
        assert svc.description is not None, sid
        assert svc.legal_basis, sid
