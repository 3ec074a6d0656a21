"""Two nodes sharing one PostgreSQL state on the broker act as one bus.

Two ``Node`` objects in this process (each with its own HTTP gateway, data folder and audit
file) host the portal and the cadastre on the live RabbitMQ, both consuming the cadastre's
queue, and share ``state:`` in a PostgreSQL schema of this test's own. What must hold:

* a signed request one node accepted and executed, re-published to get the answer elsewhere,
  is refused ``replayed`` by the other node — and by the first after a restart — and the agency
  (the cadastre adapter) is not called again;
* a request number issued by one node is verified identically on the other, and the client
  reads its document there;
* an asynchronous request taken by one node is polled on the other;
* the same ``Idempotency-Key`` on the other node gets the first answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bus.config.loader import load_settings
from bus.config.routes import Route
from bus.core.envelope import Envelope, Kind
from bus.gateway.app import create_app
from bus.node.wiring import Node
from bus.transport import Message, reply_queue
from bus.transport.rabbitmq.transport import RabbitTransport
from demo.data import AZIZ, DILNOZA
from demo.servers import RunningServer, serve_in_thread
from schemas import PropertyOwnershipRequest
from tests.faults.nodes import AMQP, BrokerDeployment
from tests.live import pg_schema

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.slow]
PURPOSE = "housing-subsidy"


@dataclass
class Running:
    node: Node
    server: RunningServer
    config: Path

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()  # the app's lifespan stops the node

    def agency_calls(self, service: str) -> float:
        value = self.node.metrics.registry.get_sample_value(
            "bus_adapter_calls_total",
            {"provider": service.partition("/")[0], "service": service, "outcome": "ok"},
        )
        return value or 0.0


class Bus:
    def __init__(self, tmp: Path, state_url: str) -> None:
        self.deployment = BrokerDeployment(tmp, prefix="shared", residence_url="http://127.0.0.1:9")
        self.deployment.config["state"] = state_url
        self.tmp = tmp
        self.token = self.deployment.token
        self.running: dict[str, Running] = {}

    def start(self, role: str) -> Running:
        _, path = self.deployment.write_node(role, ["portal", "cadastre"])
        config: dict[str, Any] = yaml.safe_load(path.read_text())
        data = self.tmp / role  # each node its own files; what they share is the state
        config["documents"]["path"] = str(data / "documents.db")
        config["audit"]["url"] = f"sqlite:///{data / 'audit.db'}"
        path.write_text(yaml.safe_dump(config))
        node = Node(load_settings(path))
        running = Running(node, serve_in_thread(create_app(node)), path)
        self.running[role] = running
        return running

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Bus-User": "officer-17",
                "X-Bus-Purpose": PURPOSE, **extra}

    def close(self) -> None:
        for running in self.running.values():
            running.stop()
        self.deployment.close()


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[Bus]:
    with pg_schema("shared_state") as url:
        bus = Bus(tmp_path, url)
        try:
            bus.start("a")
            bus.start("b")
            yield bus
        finally:
            bus.close()


def _property_route(node: Node, service: str) -> Route:
    return next(r for r in node.router.routes() if r.service == service)


def _send(spy: RabbitTransport, queue: str, body: bytes, envelope: Envelope) -> Envelope:
    future: Future[Message] = spy.request(
        queue, Message(body=body, message_id=envelope.id,
                       expires_at=envelope.expires_at.timestamp()),
    )
    return Envelope.from_json(future.result(timeout=20).body)


def _refused_or_recorded(reply: Envelope, answer: Envelope) -> bool:
    """A copy of an executed request is refused ``replayed``, or answered from the record: the
    first answer itself (a reply can only go to the reply address the asker signed)."""
    refused = reply.kind is Kind.error and reply.payload["code"] == "replayed"
    return refused or reply == answer


def test_a_request_executed_on_one_node_is_replayed_nowhere(bus: Bus) -> None:
    service = bus.deployment.property
    a = bus.running["a"]
    route = _property_route(a.node, service)
    assert a.node.exchanger is not None
    # the asker (a spy on the broker) signs where its answer goes; every copy is sent from it
    spies = [RabbitTransport(AMQP, node=f"{bus.deployment.tag}-spy")]
    bus.deployment.extra_queues += [reply_queue(s.node) for s in spies]
    signed = a.node.seal.sign(a.node.exchanger.build(
        route, PropertyOwnershipRequest(pinfl=AZIZ.pinfl), client="portal", purpose=PURPOSE,
        user="officer-17", timeout_s=60,
    ).addressed(reply_to=reply_queue(spies[0].node), node=spies[0].node))
    body = signed.to_json()
    try:
        answer = _send(spies[0], route.queue, body, signed)  # the asker gets its answer
        assert answer.kind is Kind.response, answer.payload
        calls = {role: r.agency_calls(service) for role, r in bus.running.items()}
        assert sum(calls.values()) == 1
        executed = max(calls, key=lambda role: calls[role])
        other = "b" if executed == "a" else "a"

        bus.running[executed].stop()  # only the other node consumes now
        replayed = _send(spies[0], route.queue, body, signed)  # the same bytes, once more
        # refused as replayed, or the recorded answer sent again to the signed asker
        assert _refused_or_recorded(replayed, answer)
        assert bus.running[other].agency_calls(service) == calls[other]  # never reached it

        restarted = bus.start(executed)  # the node that executed it, restarted
        bus.running[other].stop()
        replayed = _send(spies[0], route.queue, body, signed)
        assert _refused_or_recorded(replayed, answer)
        assert restarted.agency_calls(service) == 0
    finally:
        for spy in spies:
            spy.close()


def test_numbers_async_results_and_idempotency_keys_hold_on_every_node(bus: Bus) -> None:
    service = bus.deployment.property
    a, b = bus.running["a"].url, bus.running["b"].url
    first = httpx.post(f"{a}/v1/services/{service}", json={"pinfl": AZIZ.pinfl},
                       headers=bus.headers(**{"Idempotency-Key": "k-1"}), timeout=20)
    assert first.status_code == 200, first.text
    number = first.headers["x-bus-request-number"]
    on_a, on_b = (httpx.get(f"{u}/verify/{number}", headers={"Accept": "application/json"},
                            timeout=10) for u in (a, b))
    assert on_b.status_code == 200, on_b.text
    assert on_b.json() == on_a.json() and on_b.json()["signature"]["valid"]
    document = httpx.get(f"{b}/v1/documents/{number}", timeout=10,
                         headers=bus.headers(Accept="application/json"))
    assert document.status_code == 200 and document.content == first.content

    again = httpx.post(f"{b}/v1/services/{service}", json={"pinfl": AZIZ.pinfl},
                       headers=bus.headers(**{"Idempotency-Key": "k-1"}), timeout=20)
    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    second = httpx.post(f"{b}/v1/services/{service}", json={"pinfl": DILNOZA.pinfl},
                        headers=bus.headers(), timeout=20)
    assert second.status_code == 200, second.text
    numbers = {number, second.headers["x-bus-request-number"]}
    assert len(numbers) == 2 and all(n.startswith("BUS-") for n in numbers)  # one counter

    taken = httpx.post(f"{a}/v1/services/{service}", params={"mode": "async"},
                       json={"pinfl": AZIZ.pinfl}, headers=bus.headers(), timeout=20)
    assert taken.status_code == 202, taken.text
    location = taken.headers["location"]
    deadline = time.monotonic() + 20
    polled = httpx.get(f"{b}{location}", headers=bus.headers(), timeout=10)
    while polled.status_code == 202 and time.monotonic() < deadline:
        time.sleep(0.05)
        polled = httpx.get(f"{b}{location}", headers=bus.headers(), timeout=10)
    assert polled.status_code == 200, polled.text
    assert polled.headers["x-bus-request-number"].startswith("BUS-")


def test_an_async_bundle_taken_by_one_node_shows_its_parts_on_the_other(bus: Bus) -> None:
    service = bus.deployment.property
    a, b = bus.running["a"].url, bus.running["b"].url
    parts = [{"service": service, "request": {"pinfl": p.pinfl}} for p in (AZIZ, DILNOZA)]
    taken = httpx.post(f"{a}/v1/bundles", params={"mode": "async"}, json={"parts": parts},
                       headers=bus.headers(), timeout=20)
    assert taken.status_code == 202, taken.text
    location = taken.headers["location"]
    deadline = time.monotonic() + 20
    shown = httpx.get(f"{b}{location}", headers=bus.headers(), timeout=10)
    while shown.json().get("state") == "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
        shown = httpx.get(f"{b}{location}", headers=bus.headers(), timeout=10)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["state"] == "done"
    assert [p["message_id"] for p in body["parts"]] == [
        p["message_id"] for p in taken.json()["parts"]]  # in the order asked, from either node
    assert all(p["status"] == 200 for p in body["parts"])
