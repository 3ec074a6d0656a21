"""Asynchronous requests across what goes wrong: a dead letter replayed after the agency came
back reaches the asker, and a callback is delivered once across a restart."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.types import Receive, Scope, Send

from bus.cli.app import DEMO_MEMBERS, new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.gateway.asynchronous import AsyncRequests, async_reply_queue
from bus.node.wiring import Node
from bus.records.async_results import MessageStore
from bus.records.retention import messages_path
from bus.transport import Subscription
from bus.transport.base import Handler
from bus.transport.embedded.transport import EmbeddedTransport
from demo import cadastre, civil_registry
from demo.data import BIRTHS
from demo.scenario import CIVIL, write_config
from demo.servers import serve_in_thread
from schemas import BirthCertificateRequest
from signing import generate_member_key

pytestmark = pytest.mark.slow

PERSON = BIRTHS[0]


class SwitchedAgency:
    """The civil registry, answering after ``delay_s``, with 503 while ``down``; its journal of
    bus message ids."""

    def __init__(self, db: Path) -> None:
        self.app = civil_registry.create_app(db)
        self.down = False
        self.delay_s = 0.0

    @property
    def journal(self) -> list[str | None]:
        return list(self.app.state.message_ids)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            await asyncio.sleep(self.delay_s)
        if self.down and scope["type"] == "http" and scope["method"] == "POST":
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"down"})
            return
        await self.app(scope, receive, send)


def _config(tmp: Path, wsdl: str, **civil: Any) -> tuple[Path, str]:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp / "keys", member)
    token, digest = new_token()
    path = write_config(tmp, residence_url="http://127.0.0.1:9",
                        cadastre_db=cadastre.create_database(tmp / "c.db"),
                        token_sha256=digest, civil_wsdl=wsdl)
    config = yaml.safe_load(path.read_text())
    config["services"][CIVIL].update(civil)
    config["members"]["portal"]["callback_hosts"] = ["127.0.0.1"]
    # the demo allows no callbacks; this test's receiver is on loopback, named exactly
    config["callbacks"] = {"allowed_hosts": ["127.0.0.1"], "require_https": False,
                           "allowed_networks": ["127.0.0.1/32"]}
    path.write_text(yaml.safe_dump(config))
    return path, token


def _headers(token: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Bus-User": "clerk",
            "X-Bus-Purpose": "child-benefit", **more}


def _finished(url: str, location: str, token: str, *, unlike: int = 202) -> httpx.Response:
    give_up = time.monotonic() + 15
    while True:
        r = httpx.get(f"{url}{location}", headers=_headers(token), timeout=5)
        if r.status_code != unlike or time.monotonic() > give_up:
            return r
        time.sleep(0.05)


@pytest.fixture
def agency(tmp_path: Path) -> Iterator[tuple[SwitchedAgency, str]]:
    agency = SwitchedAgency(tmp_path / "civil.db")
    with serve_in_thread(agency, timeout_graceful_shutdown=1) as server:
        yield agency, f"{server.url}{civil_registry.WSDL_PATH}?wsdl"


def test_a_replayed_dead_letter_answers_the_asker(
    tmp_path: Path, agency: tuple[SwitchedAgency, str]
) -> None:
    """The agency is down through every redelivery: the asker gets the error and the request
    is dead-lettered. Once the agency is back an operator replays it: the provider hands the
    data out, and the asker's result (and callback) becomes that answer, not the old error."""
    registry, wsdl = agency
    path, token = _config(tmp_path, wsdl, timeout_s=60, breaker={"failures": 20, "reset_s": 1},
                          retry={"attempts": 1, "redeliveries": 1, "redelivery_delay_s": 0.05})
    registry.down = True
    node = Node(load_settings(path))
    with serve_in_thread(create_app(node)) as server:
        r = httpx.post(f"{server.url}/v1/services/{CIVIL}?mode=async", json={"pinfl": PERSON.pinfl},
                       headers=_headers(token), timeout=10)
        assert r.status_code == 202, r.text
        message_id, location = r.headers["X-Bus-Message-Id"], r.headers["Location"]
        failed = _finished(server.url, location, token)
        assert failed.status_code == 502 and failed.json()["code"] == "provider-unavailable"
        letter = next(d for d in node.transport.dead_letters(100)
                      if d.message.message_id == message_id)
        assert registry.journal == []  # the agency was down: it served nothing
        registry.down = False
        node.transport.replay(letter.id)
        answered = _finished(server.url, location, token, unlike=502)
        assert answered.status_code == 200, answered.text
        assert answered.json()["payload"]["number"] == PERSON.certificate
        assert answered.headers["X-Bus-Request-Number"]
        assert registry.journal == [message_id]


class ReplyFirst(EmbeddedTransport):
    """An embedded transport whose ``consume`` of an async reply queue returns only once the
    first answer waiting there was handled: the order a restart may take by chance."""

    def consume(self, queue: str, handler: Handler, *, prefetch: int = 8) -> Subscription:
        if not queue.endswith(".async"):
            return super().consume(queue, handler, prefetch=prefetch)
        handled = threading.Event()

        def first_then_on(delivery: Any) -> None:
            try:
                handler(delivery)
            finally:
                handled.set()

        subscription = super().consume(queue, first_then_on, prefetch=prefetch)
        assert handled.wait(10), "no answer waited on the async reply queue"
        return subscription


def test_a_callback_is_delivered_once_after_a_restart(
    tmp_path: Path, agency: tuple[SwitchedAgency, str]
) -> None:
    """A node starts with an asynchronous request still pending and its answer waiting on the
    async reply queue (it stopped, or crashed, while the agency answered): the answer is taken,
    and its callback delivered once — also when the answer is taken before the callbacks left
    over are looked for."""
    _, wsdl = agency
    path, _ = _config(tmp_path, wsdl)
    settings = load_settings(path)
    node = Node(settings, transport=ReplyFirst(
        settings.transport_url().removeprefix("embedded://"), node=settings.node.name))
    node.start()
    try:
        assert node.exchanger is not None
        route = node.router.route(CIVIL)
        envelope = node.exchanger.build(route, BirthCertificateRequest(pinfl=PERSON.pinfl),
                                        client="portal", purpose="child-benefit", user="clerk")
        queue = async_reply_queue(node.name)
        node.transport.declare(queue)
        store = MessageStore(messages_path(node.documents.path))
        store.create(envelope.id, client="portal", service=CIVIL, correlation=envelope.id,
                     expires_at=envelope.expires_at.timestamp(),
                     callback="http://127.0.0.1:9/hook")  # the test's transport receives it
        store.close()
        node.exchanger.post(route, envelope, reply_to=queue)  # as the node did before it stopped
        give_up = time.monotonic() + 10
        while node.transport.queue_depth(queue) == 0:  # the provider answered: it waits there
            assert time.monotonic() < give_up
            time.sleep(0.05)
        delivered: list[str] = []

        def receive(request: httpx.Request) -> httpx.Response:
            delivered.append(request.headers["X-Bus-Message-Id"])
            return httpx.Response(204)

        async def restart() -> None:
            asynchronous = AsyncRequests(node, callback_delays=(0.05,),
                                         transport=httpx.MockTransport(receive))
            try:
                await asynchronous.start()
                while len(asynchronous._tasks) > 1:  # the callbacks running (the sweep stays)
                    await asyncio.sleep(0.01)
            finally:
                await asynchronous.close()

        asyncio.run(restart())
    finally:
        node.stop()
    assert delivered == [envelope.id]
