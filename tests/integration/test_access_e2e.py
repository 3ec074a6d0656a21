"""Access rights end to end: refusals at the gateway, fields stripped on the provider's node
before signing (so they never travel), and ``run_bus.py access check``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from bus.cli.app import DEMO_MEMBERS, app, new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.node.wiring import Node
from bus.transport import Message
from demo import cadastre, residence_registry
from demo.data import AZIZ
from demo.scenario import PROPERTY, RESIDENCE, verify_answer, write_config
from demo.servers import serve_in_thread
from signing import generate_member_key

ALLOWED = ["pinfl", "address", "kind"]  # not full_name, registered_on, valid_until


@dataclass
class Bus:
    url: str
    headers: dict[str, str]
    node: Node
    config: Path
    keys: Path

    def ask(self, service: str, purpose: str) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/services/{service}",
            json={"pinfl": AZIZ.pinfl},
            headers={**self.headers, "X-Bus-Purpose": purpose},
            timeout=10,
        )


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    tmp = tmp_path_factory.mktemp("access")
    for member in DEMO_MEMBERS:
        generate_member_key(tmp / "keys", member)
    token, digest = new_token()
    db = tmp / "r.db"
    residence_registry.seed(db)
    with serve_in_thread(residence_registry.create_app(db)) as agency:
        path = write_config(
            tmp,
            residence_url=agency.url,
            cadastre_db=cadastre.create_database(tmp / "c.db"),
            token_sha256=digest,
        )
        config = yaml.safe_load(path.read_text())
        config["access"] = [
            {"client": "portal", "service": RESIDENCE, "purpose": ["child-benefit"],
             "fields": ALLOWED},
            {"client": "portal", "service": RESIDENCE, "purpose": ["pension"],
             "valid_until": "2020-01-01T00:00:00Z"},
            {"client": "portal", "service": RESIDENCE, "purpose": ["housing"],
             "valid_from": "2999-01-01T00:00:00Z"},
        ]  # and no right at all on the cadastre
        path.write_text(yaml.safe_dump(config))
        node = Node(load_settings(path))
        with serve_in_thread(create_app(node)) as gateway:
            headers = {"Authorization": f"Bearer {token}", "X-Bus-User": "officer-17"}
            yield Bus(gateway.url, headers, node, path, tmp / "keys")


def test_fields_outside_the_right_are_stripped_before_signing(bus: Bus) -> None:
    r = bus.ask(RESIDENCE, "child-benefit")
    assert r.status_code == 200, r.text
    answer = r.json()
    # the registry does answer with a full name and a date: the provider's node removed them
    assert sorted(answer["payload"]) == sorted(ALLOWED)
    assert "full_name" not in r.text and AZIZ.full_name not in r.text
    # the provider signed the minimised payload: what travelled never held the other fields
    assert verify_answer(answer, bus.keys / "residence-registry.pub", "residence-registry")


def test_the_reply_on_the_transport_holds_only_the_allowed_fields(bus: Bus) -> None:
    """The message the provider published, seen on the transport (not the gateway's copy)."""
    seen: list[Message] = []
    transport = bus.node.transport
    original = transport.reply

    def spy(request: Message, reply: Message) -> None:
        seen.append(reply)
        original(request, reply)

    transport.reply = spy  # type: ignore[method-assign]
    try:
        assert bus.ask(RESIDENCE, "child-benefit").status_code == 200
    finally:
        del transport.reply
    assert seen and b"full_name" not in seen[0].body and b"registered_on" not in seen[0].body


@pytest.mark.parametrize(
    ("service", "purpose", "reason"),
    [
        (PROPERTY, "housing-subsidy", "has no access right"),  # no right at all
        (RESIDENCE, "marketing", "purpose 'marketing' is not allowed"),  # wrong purpose
        (RESIDENCE, "pension", "ended at 2020-01-01T00:00:00+00:00"),  # window closed
        (RESIDENCE, "housing", "valid only from 2999-01-01"),  # window not yet open
    ],
)
def test_refusals(bus: Bus, service: str, purpose: str, reason: str) -> None:
    r = bus.ask(service, purpose)
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "access-denied"
    assert reason in r.json()["detail"]


def test_cli_access_check_explains(bus: Bus) -> None:
    runner = CliRunner()
    ok = runner.invoke(
        app, ["access", "check", "portal", RESIDENCE, "--purpose", "child-benefit",
              "--config", str(bus.config)],
    )
    assert ok.exit_code == 0, ok.output
    assert "allowed: portal may call" in ok.output and "pinfl, address, kind" in ok.output
    no = runner.invoke(
        app, ["access", "check", "portal", RESIDENCE, "-p", "pension", "-c", str(bus.config)]
    )
    assert no.exit_code == 1 and "ended at 2020-01-01" in no.output
    then = runner.invoke(
        app, ["access", "check", "portal", RESIDENCE, "-p", "pension", "-c", str(bus.config),
              "--at", "2019-06-01T00:00:00"],
    )
    assert then.exit_code == 0, then.output
