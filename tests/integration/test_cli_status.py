"""``run_bus.py status`` against a running demo node: the tables show its services, rates,
outcomes, providers, queues and readiness, read from ``/metrics`` alone."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import yaml
from typer.testing import CliRunner

from bus.cli.app import app
from bus.cli.status import quantile
from demo.archive import ARCHIVE, wait_for_task
from demo.data import PEOPLE
from demo.scenario import PROPERTY, RESIDENCE, DemoStack


def test_status_shows_services_outcomes_providers_and_readiness(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    for purpose in ("housing-subsidy", "housing-subsidy", "marketing"):
        portal.post(
            f"/v1/services/{PROPERTY}",
            json={"pinfl": PEOPLE[0].pinfl},
            headers={"X-Bus-Purpose": purpose},
        )
    waiting = portal.post(f"/v1/services/{ARCHIVE}", params={"mode": "async"},
                          json={"pinfl": PEOPLE[1].pinfl},
                          headers={"X-Bus-Purpose": "pension-assignment"})
    assert waiting.status_code == 202
    desk = demo_stack.node.inbox
    assert desk is not None
    wait_for_task(desk, waiting.headers["X-Bus-Message-Id"])
    result = CliRunner().invoke(
        app, ["status", "--url", demo_stack.gateway.url, "--interval", "0.2"]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    for text in (
        "Node", demo_stack.node.name, "ready", "embedded, connected",
        "Services", RESIDENCE, PROPERTY, "asked/s", "p99",
        "Outcomes other than ok", "access-denied",
        "Providers", "cadastre", "breaker",
        "Signature failures and access refusals", "purpose-not-allowed",
        "Operator inbox", ARCHIVE, "first expires in", "71h5",  # 3 days less a moment
    ):  # fmt: skip
        assert text in out, f"{text!r} not in:\n{out}"
    assert PEOPLE[0].pinfl not in out and PEOPLE[1].pinfl not in out


def test_status_finds_the_node_from_the_config(demo_stack: DemoStack, tmp_path: Path) -> None:
    config = yaml.safe_load(demo_stack.config_path.read_text())
    config["node"]["listen"] = f"127.0.0.1:{demo_stack.gateway.port}"
    path = demo_stack.config_path.parent / "status.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["status", "--config", str(path), "--interval", "0"])
    assert result.exit_code == 0, result.output
    assert RESIDENCE in result.output


def test_status_of_a_node_that_does_not_answer_exits_1() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    result = CliRunner().invoke(app, ["status", "--url", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == 0.1
    assert quantile(0.7, buckets) == 0.1 + 0.4 * 0.5
    assert quantile(0.99, buckets) == 0.5 + 0.5 * 0.9
    assert quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None
