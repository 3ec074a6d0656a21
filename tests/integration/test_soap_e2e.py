"""Through a node to the SOAP civil registry: signed answers, faults, and a flapping agency."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from bus.cli.app import DEMO_MEMBERS, new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.node.wiring import Node
from demo import cadastre, civil_registry
from demo.data import BIRTHS, UNKNOWN_PINFL
from demo.scenario import CIVIL, verify_answer, write_config
from demo.servers import RunningServer, serve_in_thread
from signing import generate_member_key

pytestmark = pytest.mark.slow


class FlappingAgency:
    """The civil registry, or a 503 page while ``up`` is False; counts the calls that reach it."""

    def __init__(self, db: Path) -> None:
        self.app = civil_registry.create_app(db)
        self.up = True
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            self.calls += 1
            if not self.up:
                page = PlainTextResponse("<html>503 Service Unavailable</html>", status_code=503)
                await page(scope, receive, send)
                return
        await self.app(scope, receive, send)


@dataclass
class Bus:
    url: str
    headers: dict[str, str]
    agency: FlappingAgency
    keys: Path

    def ask(self, body: dict[str, str], purpose: str = "child-benefit") -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/services/{CIVIL}",
            json=body,
            headers={**self.headers, "X-Bus-Purpose": purpose},
            timeout=10,
        )

    def circuit_state(self) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        line = next(
            x for x in text.splitlines()
            if x.startswith("bus_circuit_state{") and f'service="{CIVIL}"' in x
        )
        return float(line.rsplit(" ", 1)[1])


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[Bus]:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    agency = FlappingAgency(tmp_path / "civil.db")
    with serve_in_thread(agency) as registry:
        path = write_config(
            tmp_path,
            residence_url="http://127.0.0.1:9",
            cadastre_db=cadastre.create_database(tmp_path / "c.db"),
            token_sha256=digest,
            civil_wsdl=f"{registry.url}{civil_registry.WSDL_PATH}?wsdl",
        )
        config = yaml.safe_load(path.read_text())
        config["services"][CIVIL].update(
            retry={"attempts": 1}, breaker={"failures": 2, "reset_s": 0.5}
        )
        path.write_text(yaml.safe_dump(config))
        node: RunningServer
        with serve_in_thread(create_app(Node(load_settings(path)))) as node:
            yield Bus(
                node.url,
                {"Authorization": f"Bearer {token}", "X-Bus-User": "officer-17"},
                agency,
                tmp_path / "keys",
            )


def test_the_answer_is_signed_by_the_registry_and_minimised(bus: Bus) -> None:
    r = bus.ask({"pinfl": BIRTHS[1].pinfl})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert verify_answer(answer, bus.keys / "civil-registry.pub", "civil-registry")
    payload = answer["payload"]
    assert payload["number"] == BIRTHS[1].certificate
    assert [p["role"] for p in payload["parents"]] == ["father", "mother"]
    assert "registry_office" not in payload  # not in the portal's access right


def test_a_soap_fault_is_a_problem_with_the_bus_code(bus: Bus) -> None:
    r = bus.ask({"pinfl": UNKNOWN_PINFL})
    assert r.status_code == 404
    assert r.json()["type"].endswith("/no-data")
    both = bus.ask({"pinfl": BIRTHS[0].pinfl, "number": BIRTHS[0].certificate})
    assert both.status_code == 422  # refused by the shared schema before any call


def test_a_flapping_agency_opens_the_breaker_and_a_probe_closes_it(bus: Bus) -> None:
    pinfl = {"pinfl": BIRTHS[2].pinfl}
    assert bus.ask(pinfl).status_code == 200
    assert bus.circuit_state() == 0
    bus.agency.up = False
    for _ in range(2):
        r = bus.ask(pinfl)
        assert (r.status_code, r.json()["type"].rsplit("/", 1)[1]) == (502, "provider-unavailable")
    assert bus.circuit_state() == 2  # open
    calls = bus.agency.calls
    r = bus.ask(pinfl)
    assert (r.status_code, r.json()["type"].rsplit("/", 1)[1]) == (503, "circuit-open")
    assert bus.agency.calls == calls  # refused without calling the agency
    time.sleep(0.6)
    r = bus.ask(pinfl)  # the half-open probe fails: open again
    assert r.status_code == 502 and bus.circuit_state() == 2
    bus.agency.up = True
    assert bus.ask(pinfl).status_code == 503  # still open for another reset_s
    time.sleep(0.6)
    r = bus.ask(pinfl)  # the probe succeeds: closed
    assert r.status_code == 200, r.text
    assert bus.circuit_state() == 0
    assert bus.ask(pinfl).status_code == 200
