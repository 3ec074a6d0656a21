"""Transient provider failures go through the transport's retry queues; permanent ones end in
the dead letters with their reason, and replay works — on both transports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from starlette.types import Receive, Scope, Send

from bus.cli.app import DEMO_MEMBERS, new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.node.wiring import Node
from demo import cadastre, residence_registry
from demo.data import AZIZ
from demo.scenario import RESIDENCE, write_config
from demo.servers import RunningServer, serve_in_thread
from signing import generate_member_key
from tests.live import AMQP_URL as AMQP


class FailingAgency:
    """The residence registry behind a switch: the next ``failures`` lookups answer 503."""

    def __init__(self, db: Path) -> None:
        self.app = residence_registry.create_app(db)
        self.failures = 0
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            self.calls += 1
            if self.failures > 0:
                self.failures -= 1
                await send({"type": "http.response.start", "status": 503, "headers": []})
                await send({"type": "http.response.body", "body": b"busy"})
                return
        await self.app(scope, receive, send)


@dataclass
class Bus:
    agency: FailingAgency
    node: Node
    gateway: RunningServer
    headers: dict[str, str]

    def ask(self) -> httpx.Response:
        return httpx.post(
            f"{self.gateway.url}/v1/services/{RESIDENCE}",
            json={"pinfl": AZIZ.pinfl},
            headers=self.headers,
            timeout=20,
        )


@pytest.fixture(params=["embedded", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def bus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bus]:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    agency = FailingAgency(tmp_path / "residence.db")
    with serve_in_thread(agency) as agency_server:
        path = write_config(
            tmp_path,
            residence_url=agency_server.url,
            cadastre_db=cadastre.create_database(tmp_path / "cadastre.db"),
            token_sha256=digest,
        )
        config = yaml.safe_load(path.read_text())
        service = config["services"][RESIDENCE]
        service["timeout_s"] = 10
        service["retry"] = {"attempts": 1, "redeliveries": 3, "redelivery_delay_s": 0.05}
        if request.param == "rabbitmq":
            config["transport"] = {"url": AMQP}
            config["node"]["name"] = f"retry-test-{tmp_path.name[-12:]}"
        path.write_text(yaml.safe_dump(config))
        node = Node(load_settings(path))
        with serve_in_thread(create_app(node)) as gateway:
            headers = {
                "Authorization": f"Bearer {token}",
                "X-Bus-Purpose": "child-benefit",
                "X-Bus-User": "officer-17",
            }
            yield Bus(agency, node, gateway, headers)


def _own_dead_letters(bus: Bus, message_id: str) -> list[str]:
    return [
        d.reason for d in bus.node.transport.dead_letters(10_000)
        if d.message.message_id == message_id
    ]


def test_three_transient_failures_then_success_on_the_fourth_attempt(bus: Bus) -> None:
    bus.agency.failures = 3
    r = bus.ask()
    assert r.status_code == 200, r.text
    assert r.json()["payload"]["pinfl"] == AZIZ.pinfl
    assert bus.agency.calls == 4
    assert _own_dead_letters(bus, r.headers["X-Bus-Message-Id"]) == []


def test_permanent_failure_is_answered_dead_lettered_and_replayable(bus: Bus) -> None:
    bus.agency.failures = 1000
    r = bus.ask()
    assert r.status_code == 502, r.text
    assert r.json()["code"] == "provider-unavailable"
    assert bus.agency.calls == 4  # the first delivery and its three redeliveries
    message_id = r.headers["X-Bus-Message-Id"]
    transport = bus.node.transport
    deadline = time.monotonic() + 10
    while not _own_dead_letters(bus, message_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _own_dead_letters(bus, message_id) == ["provider-unavailable"]

    # The agency is back; the operator replays: the request reaches it again, once, and is acked.
    bus.agency.failures = 0
    letter = next(
        d for d in transport.dead_letters(10_000) if d.message.message_id == message_id
    )
    transport.replay(letter.id)
    deadline = time.monotonic() + 10
    while bus.agency.calls < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bus.agency.calls == 5
    time.sleep(0.3)
    assert bus.agency.calls == 5
    assert _own_dead_letters(bus, message_id) == []


def test_client_errors_are_never_retried(bus: Bus) -> None:
    r = httpx.post(
        f"{bus.gateway.url}/v1/services/{RESIDENCE}",
        json={"pinfl": "33112999990068"},  # well formed, unknown: the agency says 404
        headers=bus.headers,
        timeout=20,
    )
    assert r.status_code == 404 and r.json()["code"] == "no-data"
    assert bus.agency.calls == 1
