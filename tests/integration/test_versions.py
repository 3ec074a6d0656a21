"""Versioning: a v2 beside a deprecated v1 of the same service, both asked through a node; the
v1 route's answers carry Deprecation, Sunset and Link headers; the catalogue shows the dates
and the successor; the CLI lists both."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from bus.cli.app import app as cli
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.node.wiring import Node
from demo.data import PEOPLE
from demo.scenario import RESIDENCE, DemoStack
from demo.servers import RunningServer, listening_socket, serve_in_thread

V2 = RESIDENCE.removesuffix("/v1") + "/v2"


@pytest.fixture(scope="module")
def versioned(
    demo_stack: DemoStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, RunningServer]]:
    """The demo's configuration with a residence v2 beside v1, v1 deprecated; a node on it
    with its own queues, audit log and documents (the demo's agencies answer both)."""
    state = tmp_path_factory.mktemp("versions")
    config: dict[str, Any] = yaml.safe_load(demo_stack.config_path.read_text())
    config["services"][V2] = copy.deepcopy(config["services"][RESIDENCE])
    config["services"][V2]["title"] = "Residence registration, version 2"
    config["services"][RESIDENCE].update(deprecated_on="2026-01-01", sunset_on="2027-07-01")
    config["access"] += [
        {**right, "service": V2} for right in config["access"] if right["service"] == RESIDENCE
    ]
    config["transport"] = {"url": f"embedded://{state / 'queues.db'}"}
    config["audit"]["url"] = f"sqlite:///{state / 'audit.db'}"
    sock = listening_socket("127.0.0.1", 0)
    config["documents"].update(path=str(state / "documents.db"),
                               public_url=f"http://127.0.0.1:{sock.getsockname()[1]}")
    path = state / "bus.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    server = serve_in_thread(create_app(Node(load_settings(path))), sock=sock)
    try:
        yield path, server
    finally:
        server.stop()


@pytest.fixture
def client(demo_stack: DemoStack, versioned: tuple[Path, RunningServer]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {demo_stack.token}", "X-Bus-User": "officer-v",
               "X-Bus-Purpose": "child-benefit"}
    with httpx.Client(base_url=versioned[1].url, headers=headers, timeout=10) as c:
        yield c


def test_both_versions_answer_and_only_v1_says_it_is_deprecated(client: httpx.Client) -> None:
    body = {"pinfl": PEOPLE[0].pinfl}
    old = client.post(f"/v1/services/{RESIDENCE}", json=body)
    new = client.post(f"/v1/services/{V2}", json=body)
    assert old.status_code == new.status_code == 200, (old.text, new.text)
    assert old.json()["payload"] == new.json()["payload"]
    assert old.headers["deprecation"] == "@1767225600"  # 2026-01-01T00:00:00Z, RFC 9745
    assert parsedate_to_datetime(old.headers["sunset"]).date().isoformat() == "2027-07-01"
    assert f'</v1/catalog/{V2}>; rel="successor-version"' in old.headers["link"]
    assert f'</v1/catalog/{RESIDENCE}>; rel="deprecation"' in old.headers["link"]
    for name in ("deprecation", "sunset", "link"):
        assert name not in new.headers
    refused = client.post(f"/v1/services/{RESIDENCE}", json=body,
                          headers={"X-Bus-Purpose": "curiosity"})
    assert refused.status_code == 403 and "deprecation" in refused.headers
    paths = client.get("/openapi.json").json()["paths"]
    assert paths[f"/v1/services/{RESIDENCE}"]["post"]["deprecated"] is True
    assert "deprecated" not in paths[f"/v1/services/{V2}"]["post"]
    wsdl = client.get(f"/soap/{RESIDENCE}?wsdl")
    assert wsdl.status_code == 200 and wsdl.headers["deprecation"] == "@1767225600"
    assert "deprecation" not in client.get(f"/soap/{V2}?wsdl").headers


def test_the_catalogue_shows_the_versions_and_the_deprecation(client: httpx.Client) -> None:
    entries = {e["service"]: e for e in client.get("/v1/catalog").json()["services"]}
    old, new = entries[RESIDENCE], entries[V2]
    assert (old["deprecated_on"], old["sunset_on"], old["successor"]) == (
        "2026-01-01", "2027-07-01", V2)
    assert (new["deprecated_on"], new["successor"]) == (None, None)
    assert old["versions"] == new["versions"] == [
        {"service": RESIDENCE, "version": "v1", "deprecated_on": "2026-01-01",
         "sunset_on": "2027-07-01"},
        {"service": V2, "version": "v2", "deprecated_on": None, "sunset_on": None},
    ]
    page = client.get("/catalog").text
    assert f"Deprecated on 2026-01-01, withdrawn on 2027-07-01: use <code>{V2}</code>" in page


def test_the_command_line_catalogue(versioned: tuple[Path, RunningServer]) -> None:
    path = versioned[0]
    listed = CliRunner().invoke(cli, ["catalog", "--config", str(path)], env={"COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    assert V2 in listed.output and "deprecated 2026-01-01" in listed.output
    one = CliRunner().invoke(cli, ["catalog", RESIDENCE, "-c", str(path)], env={"COLUMNS": "200"})
    assert one.exit_code == 0, one.output
    assert "Law" in one.output and "child-benefit" in one.output and V2 in one.output
    assert "/soap/" + RESIDENCE + "?wsdl" in one.output
    unknown = CliRunner().invoke(cli, ["catalog", "nobody/none/v1", "-c", str(path)])
    assert unknown.exit_code == 2 and "nobody/none/v1" in unknown.output
