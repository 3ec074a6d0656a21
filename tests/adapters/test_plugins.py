"""Plugins: a third-party adapter kind found through the ``bus.adapters`` entry points.

``tests/plugins/static_plugin`` is made importable and discoverable without installing it: its
folder goes on ``sys.path`` with a temporary ``.dist-info`` carrying its entry point, which is
what ``importlib.metadata`` reads (``monkeypatch.syspath_prepend`` also clears its caches).
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from adapters import AdapterConfigError, adapter_kind, available_kinds
from bus.cli.app import DEMO_MEMBERS, app, new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.node.wiring import Node
from demo import cadastre
from demo.data import AZIZ, JASUR, expected_residence
from demo.scenario import RESIDENCE, write_config
from demo.servers import serve_in_thread
from signing import generate_member_key

PLUGIN = Path(__file__).resolve().parent.parent / "plugins" / "static_plugin"


def _dist_info(root: Path, name: str, version: str, entry_points: str) -> None:
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The plugin package importable, and its entry point as its pyproject.toml declares it."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    group = project["entry-points"]["bus.adapters"]
    lines = "\n".join(f"{k} = {v}" for k, v in group.items())
    _dist_info(tmp_path / "site", project["name"], project["version"],
               f"[bus.adapters]\n{lines}\n")
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield
    sys.modules.pop("bus_static_plugin", None)


def test_the_plugin_kind_is_found_with_its_distribution(plugin: None) -> None:
    kinds = available_kinds()
    assert {"rest", "soap", "sql", "static"} <= set(kinds)
    static = adapter_kind("static")
    assert static.source == "bus-static-plugin"
    assert static.doc.startswith("The ``static`` adapter (a plugin)")
    assert kinds["rest"].source == "built-in"


def test_without_the_plugin_the_kind_is_unknown() -> None:
    with pytest.raises(AdapterConfigError, match="unknown adapter kind 'static'"):
        adapter_kind("static")


def test_a_plugin_cannot_shadow_a_built_in_kind(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _dist_info(tmp_path, "evil-plugin", "1.0",
               "[bus.adapters]\nrest = bus_static_plugin:StaticAdapter\n")
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert adapter_kind("rest").cls.__module__ == "adapters.rest"
    assert available_kinds()["rest"].source == "built-in"


def test_a_broken_plugin_is_a_config_error(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _dist_info(tmp_path, "broken-plugin", "1.0",
               "[bus.adapters]\nbroken = no_such_module_anywhere:Adapter\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AdapterConfigError, match="'broken' failed to load"):
        available_kinds()
    result = CliRunner().invoke(app, ["adapters"])
    assert result.exit_code == 1 and "broken" in result.output
    with pytest.raises(AdapterConfigError, match="'broken' failed to load"):
        adapter_kind("broken")
    # a node whose services use other kinds still builds them: the manual kind (the bus's
    # own, an entry point too) loads without loading the broken plugin
    assert adapter_kind("manual").source == "built-in"


def test_adapters_command_lists_kinds_with_their_options(plugin: None) -> None:
    result = CliRunner().invoke(app, ["adapters"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    out = result.output
    for kind in ("rest  (built-in", "soap  (built-in", "sql  (built-in",
                 "static  (bus-static-plugin"):
        assert kind in out
    for option in ("base_url", "max_response_bytes", "wsdl", "faults", "query", "answers"):
        assert option in out
    assert "default 1048576; a longer" in out  # the description, from the module docstring


def test_adapters_command_shows_one_kind_in_full(plugin: None) -> None:
    result = CliRunner().invoke(app, ["adapters", "soap"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "Errors (all translated in ``_translated``)" in result.output
    assert "static" not in result.output
    assert CliRunner().invoke(app, ["adapters", "nope"]).exit_code == 1


def test_a_request_is_routed_through_the_plugin(plugin: None, tmp_path: Path) -> None:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    path = write_config(
        tmp_path,
        residence_url="http://127.0.0.1:9",
        cadastre_db=cadastre.create_database(tmp_path / "c.db"),
        token_sha256=digest,
    )
    config = yaml.safe_load(path.read_text())
    answer = expected_residence(AZIZ.pinfl)
    assert answer is not None
    config["services"][RESIDENCE]["adapter"] = {
        "kind": "static",
        "answers": {AZIZ.pinfl: answer.model_dump(mode="json")},
    }
    path.write_text(yaml.safe_dump(config))
    headers = {"Authorization": f"Bearer {token}", "X-Bus-User": "officer-17",
               "X-Bus-Purpose": "child-benefit"}
    with serve_in_thread(create_app(Node(load_settings(path)))) as node:
        url = f"{node.url}/v1/services/{RESIDENCE}"
        r = httpx.post(url, json={"pinfl": AZIZ.pinfl}, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["payload"] == answer.model_dump(mode="json")
        r = httpx.post(url, json={"pinfl": JASUR.pinfl}, headers=headers, timeout=10)
        assert r.status_code == 404 and r.json()["type"].endswith("/no-data")


def test_a_config_naming_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    path = write_config(
        tmp_path,
        residence_url="http://127.0.0.1:9",
        cadastre_db=cadastre.create_database(tmp_path / "c.db"),
        token_sha256="0" * 64,
    )
    config = yaml.safe_load(path.read_text())
    config["services"][RESIDENCE]["adapter"] = {"kind": "static", "answers": {}}
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    assert "static" in result.output
