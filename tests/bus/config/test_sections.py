"""The configuration's callbacks, documents and messages sections: defaults, problems, env."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.config.loader import load_settings
from tests.bus.config.test_settings import MINIMAL, line_of, only_problem, write

pytestmark = pytest.mark.usefixtures("no_bus_environment")


def test_callbacks_and_retention_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "log_level: INFO\n"))
    assert settings.callbacks.allowed_hosts == [] and settings.callbacks.require_https
    assert not settings.callbacks.allow_private and settings.callbacks.allowed_networks == []
    assert (settings.documents.retention_days, settings.messages.retention_days) == (365, 7)


def test_a_bad_callback_host_names_file_line_and_field(cfg_dir: Path) -> None:
    text = MINIMAL + "callbacks:\n  allowed_hosts: [hooks.example.org, '*.gov']\n"
    path = write(cfg_dir, text)
    problem = only_problem(path)
    assert problem.path == "callbacks.allowed_hosts"
    assert "too wide" in problem.message
    assert problem.line == line_of(text, "allowed_hosts")
    assert problem.render(str(path)).startswith(f"{path}:{problem.line}: callbacks.allowed_hosts")
    bad_network = write(cfg_dir, MINIMAL + "callbacks:\n  allowed_networks: [10.0.0.0/33]\n")
    assert only_problem(bad_network).path == "callbacks.allowed_networks.0"


def test_results_are_kept_no_longer_than_documents(cfg_dir: Path) -> None:
    text = MINIMAL + "documents:\n  retention_days: 30\nmessages:\n  retention_days: 60\n"
    problem = only_problem(write(cfg_dir, text))
    assert problem.path == "messages.retention_days" and "at most" in problem.message
    assert problem.line == line_of(text, "retention_days: 60")
    forever = MINIMAL + "documents:\n  retention_days: null\nmessages:\n  retention_days: null\n"
    settings = load_settings(write(cfg_dir, forever))
    assert settings.documents.retention_days is None and settings.messages.retention_days is None
    zero = write(cfg_dir, MINIMAL + "documents:\n  retention_days: 0\n")
    assert only_problem(zero).path == "documents.retention_days"


def test_callbacks_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUS_CALLBACKS__ALLOWED_HOSTS", '["hooks.example.org"]')
    monkeypatch.setenv("BUS_CALLBACKS__REQUIRE_HTTPS", "false")
    settings = load_settings(write(tmp_path, "callbacks:\n  allow_private: false\n"))
    assert settings.callbacks.allowed_hosts == ["hooks.example.org"]
    assert settings.callbacks.require_https is False


def test_the_pages_time_zone_is_an_iana_name(cfg_dir: Path) -> None:
    assert load_settings(write(cfg_dir, MINIMAL)).node.time_zone == "UTC"
    good = MINIMAL.replace("node:\n", "node:\n  time_zone: Asia/Tashkent\n")
    assert load_settings(write(cfg_dir, good)).node.time_zone == "Asia/Tashkent"
    text = MINIMAL.replace("node:\n", "node:\n  time_zone: Asia/Toshkent\n")
    problem = only_problem(write(cfg_dir, text))
    assert problem.path == "node.time_zone" and problem.line == line_of(text, "time_zone")
    assert "'Asia/Toshkent' is not an IANA time zone" in problem.message
