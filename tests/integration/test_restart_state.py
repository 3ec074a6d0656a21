"""The embedded default (a SQLite node state) across a node restart: a request the node
executed before is never executed again — a replay to another address than the signed one is
answered nowhere (dead-lettered ``reply-address-mismatch``), a redelivery to the asker is
answered from the recorded answer — and the agency is not asked.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bus.cli.app import DEMO_MEMBERS, new_token
from bus.config.loader import load_settings
from bus.config.settings import BusSettings
from bus.core.envelope import Envelope, Kind
from bus.node.wiring import Node
from bus.transport import Delivery, Message, reply_queue
from demo import cadastre
from demo.data import AZIZ
from demo.scenario import PROPERTY, write_config
from schemas import PropertyOwnershipRequest
from signing import generate_member_key

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(tmp_path: Path) -> BusSettings:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    _, digest = new_token()
    path = write_config(tmp_path, residence_url="http://127.0.0.1:9",
                        cadastre_db=cadastre.create_database(tmp_path / "c.db"),
                        token_sha256=digest)
    return load_settings(path)


@pytest.fixture
def started(settings: BusSettings) -> Iterator[list[Node]]:
    nodes: list[Node] = []
    yield nodes
    for node in nodes:
        node.stop()


def _calls(node: Node) -> float:
    return node.metrics.registry.get_sample_value(
        "bus_adapter_calls_total", {"provider": "cadastre", "service": PROPERTY, "outcome": "ok"}
    ) or 0.0


def test_a_restarted_node_executes_nothing_twice(
    settings: BusSettings, started: list[Node]
) -> None:
    node = Node(settings)
    started.append(node)
    node.start()
    assert node.exchanger is not None
    route = next(r for r in node.router.routes() if r.service == PROPERTY)
    signed = node.seal.sign(node.exchanger.build(
        route, PropertyOwnershipRequest(pinfl=AZIZ.pinfl), client="portal",
        purpose="housing-subsidy", user="officer-17", timeout_s=60,
    ).addressed(reply_to=reply_queue(node.transport.node), node=node.transport.node))
    message = Message(body=signed.to_json(), message_id=signed.id,
                      expires_at=signed.expires_at.timestamp())
    answered = node.transport.request(route.queue, message).result(10).body
    assert Envelope.from_json(answered).kind is Kind.response and _calls(node) == 1
    node.stop()
    started.remove(node)

    again = Node(settings)  # the same files: the node restarted
    started.append(again)
    again.start()
    got: queue.Queue[Message] = queue.Queue()

    def take(delivery: Delivery) -> None:
        with delivery.process():
            got.put(delivery.message)

    again.transport.declare("reply.elsewhere")
    again.transport.consume("reply.elsewhere", take)
    again.transport.publish(route.queue, replace(message, reply_to="reply.elsewhere"))
    give_up = time.monotonic() + 10  # another reply address than the signed one: answered nowhere
    while not [d for d in again.transport.dead_letters(1000) if d.message.message_id == signed.id
               and d.reason == "reply-address-mismatch"]:
        assert time.monotonic() < give_up, "the copy sent elsewhere was not refused"
        time.sleep(0.02)
    assert got.empty()
    redelivered = again.transport.request(route.queue, message).result(10)  # to the asker
    assert redelivered.body == answered  # the recorded answer, byte for byte
    assert _calls(again) == 0  # neither reached the agency
