"""Loading the node configuration: ``BUS_`` environment overrides, and paths relative to the
configuration file (broker URLs and passwords included)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bus.config.loader import load_settings
from tests.bus.config.test_settings import MINIMAL, SERVICE, only_problem, write

pytestmark = pytest.mark.usefixtures("no_bus_environment")


# --- environment overrides --------------------------------------------------------------------


def test_environment_overrides_win_over_the_file(
    cfg_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUS_NODE__LISTEN", "0.0.0.0:9999")
    monkeypatch.setenv("BUS_TRANSPORT__URL", "amqp://bus:secret@rabbit:5672/bus")
    monkeypatch.setenv("BUS_LOG_LEVEL", "DEBUG")
    settings = load_settings(write(cfg_dir, MINIMAL))
    assert settings.node.listen == "0.0.0.0:9999"
    assert settings.transport_url() == "amqp://bus:secret@rabbit:5672/bus"
    assert settings.log_level == "DEBUG"
    # the rest of each overridden section still comes from the file
    assert settings.node.hosts == ["portal"]
    assert SERVICE in settings.services


def test_environment_override_of_a_section_the_file_omits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUS_NODE__WORKERS", "3")
    settings = load_settings(write(tmp_path, "log_level: WARNING\n"))
    assert settings.node.workers == 3
    assert settings.node.listen == "127.0.0.1:8080"


def test_bad_environment_value_is_refused_with_its_path(
    cfg_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUS_NODE__LISTEN", "not an address")
    problem = only_problem(write(cfg_dir, MINIMAL))
    assert problem.path == "node.listen"
    assert "pattern" in problem.message


# --- relative paths ---------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_folder(
    cfg_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    text = MINIMAL.replace("  listen: 127.0.0.1:8080", "  listen: 127.0.0.1:8080\n  keys_dir: keys")
    config = write(cfg_dir, text)
    settings = load_settings(Path(os.path.relpath(config, elsewhere)))
    base = cfg_dir.resolve()
    assert settings.node.keys_dir == base / "keys"
    assert settings.members["portal"].public_key == base / "keys" / "portal.pub"
    assert settings.transport_url() == f"embedded://{base}/var/queues.db"


def test_absolute_paths_and_broker_urls_are_kept(
    cfg_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absolute_key = (cfg_dir / "keys" / "portal.pub").resolve()
    text = (MINIMAL.replace("public_key: keys/portal.pub", f"public_key: {absolute_key}")
            .replace("embedded://var/queues.db", "embedded:///srv/bus/queues.db"))
    settings = load_settings(write(cfg_dir, text))
    assert settings.members["portal"].public_key == absolute_key
    assert settings.transport_url() == "embedded:///srv/bus/queues.db"
    monkeypatch.setenv("BUS_TRANSPORT__URL", "amqps://u:p@mq/vh")
    assert load_settings(write(cfg_dir, text)).transport_url() == "amqps://u:p@mq/vh"


def test_broker_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from bus.config.settings import BusSettings

    monkeypatch.setenv("BUS_TRANSPORT__URL", "amqp://bus@rabbit:5673/bus")
    monkeypatch.setenv("BUS_TRANSPORT__PASSWORD", "p@ss/w:rd")
    settings = BusSettings()
    assert settings.transport_url() == "amqp://bus:p%40ss%2Fw%3Ard@rabbit:5673/bus"
    assert "p@ss" not in repr(settings)  # secrets stay out of reprs and logs


def test_a_password_in_the_url_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from bus.config.settings import BusSettings

    monkeypatch.setenv("BUS_TRANSPORT__PASSWORD", "other")
    settings = BusSettings(transport={"url": "amqp://u:x@rabbit/bus"})
    assert settings.transport_url() == "amqp://u:x@rabbit/bus"
