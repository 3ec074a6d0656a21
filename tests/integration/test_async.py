"""Asynchronous requests: 202 at once, the result polled or pushed to a callback, signed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bus.cli.app import DEMO_MEMBERS, new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.node.wiring import Node
from bus.records.async_results import MessageStore
from demo import cadastre, civil_registry
from demo.data import BIRTHS, UNKNOWN_PINFL
from demo.scenario import CIVIL, verify_answer, write_config
from demo.servers import RunningServer, serve_in_thread
from signing import JwsVerifier, SigningError, StaticTrustStore, generate_member_key

pytestmark = pytest.mark.slow


class SlowAgency:
    """The civil registry, answering after ``delay_s``."""

    def __init__(self, db: Path, delay_s: float) -> None:
        self.app = civil_registry.create_app(db)
        self.delay_s = delay_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            await asyncio.sleep(self.delay_s)
        await self.app(scope, receive, send)


@dataclass
class Receiver:
    """A client's callback endpoint: refuses the first ``fail_first`` deliveries with 503."""

    fail_first: int = 1
    seen: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            self.seen.append((dict(request.headers), await request.body()))
            return Response(status_code=503 if len(self.seen) <= self.fail_first else 204)

        return Starlette(routes=[Route("/hook", receive, methods=["POST"])])


@dataclass
class Bus:
    url: str
    token: str
    other_token: str
    keys: Path

    def post(self, body: dict[str, str], token: str | None = None, **headers: str
             ) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/services/{CIVIL}?mode=async",
            json=body,
            headers={"Authorization": f"Bearer {token or self.token}", "X-Bus-User": "clerk",
                     "X-Bus-Purpose": "child-benefit", **headers},
            timeout=10,
        )

    def get(self, location: str, token: str | None = None) -> httpx.Response:
        return httpx.get(f"{self.url}{location}",
                         headers={"Authorization": f"Bearer {token or self.token}"}, timeout=10)

    def result(self, location: str, timeout: float = 10) -> httpx.Response:
        give_up = time.monotonic() + timeout
        while True:
            r = self.get(location)
            if r.status_code != 202 or time.monotonic() > give_up:
                return r
            time.sleep(0.05)


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    tmp = tmp_path_factory.mktemp("async")
    for member in DEMO_MEMBERS:
        generate_member_key(tmp / "keys", member)
    token, digest = new_token()
    other, other_digest = new_token()
    with serve_in_thread(SlowAgency(tmp / "civil.db", 0.4), timeout_graceful_shutdown=1) as agency:
        path = write_config(
            tmp,
            residence_url="http://127.0.0.1:9",
            cadastre_db=cadastre.create_database(tmp / "c.db"),
            token_sha256=digest,
            civil_wsdl=f"{agency.url}{civil_registry.WSDL_PATH}?wsdl",
        )
        config = yaml.safe_load(path.read_text())
        config["members"]["cadastre"]["api_token_sha256"] = other_digest
        config["members"]["portal"]["callback_hosts"] = ["127.0.0.1"]  # not localhost
        # the demo allows no callbacks; this test's receiver is on loopback, named exactly
        config["callbacks"] = {"allowed_hosts": ["127.0.0.1", "localhost"],
                               "require_https": False, "allowed_networks": ["127.0.0.1/32"]}
        path.write_text(yaml.safe_dump(config))
        node: RunningServer
        with serve_in_thread(create_app(Node(load_settings(path)))) as node:
            yield Bus(node.url, token, other, tmp / "keys")


def test_async_answers_202_at_once_and_the_result_is_polled(bus: Bus) -> None:
    started = time.monotonic()
    r = bus.post({"pinfl": BIRTHS[1].pinfl})
    assert time.monotonic() - started < 0.35  # the agency takes 0.4 s
    assert r.status_code == 202, r.text
    message_id = r.headers["X-Bus-Message-Id"]
    assert r.headers["Location"] == f"/v1/messages/{message_id}"
    assert r.json() == {"message_id": message_id, "state": "pending",
                        "location": r.headers["Location"]}
    pending = bus.get(r.headers["Location"])
    assert pending.status_code == 202 and pending.json()["state"] == "pending"
    done = bus.result(r.headers["Location"])
    assert done.status_code == 200, done.text
    answer = done.json()
    assert answer["correlation"] == message_id
    assert answer["payload"]["number"] == BIRTHS[1].certificate
    assert verify_answer(answer, bus.keys / "civil-registry.pub", "civil-registry")
    assert done.headers["X-Bus-Request-Number"].startswith("BUS-")
    metrics = httpx.get(f"{bus.url}/metrics", timeout=5).text
    assert f'bus_exchanges_total{{client="portal",outcome="accepted",service="{CIVIL}"}}' in metrics


def test_an_error_is_kept_as_its_problem(bus: Bus) -> None:
    r = bus.post({"pinfl": UNKNOWN_PINFL})
    assert r.status_code == 202
    done = bus.result(r.headers["Location"])
    assert done.status_code == 404
    assert done.headers["content-type"].startswith("application/problem+json")
    assert done.json()["code"] == "no-data"
    assert done.json()["message_id"] == r.headers["X-Bus-Message-Id"]


def test_refusals_come_at_once_not_as_202(bus: Bus) -> None:
    assert bus.post({"pinfl": "123"}).status_code == 422
    assert bus.post({"pinfl": BIRTHS[0].pinfl}, **{"X-Bus-Purpose": "marketing"}
                    ).status_code == 403
    bad = bus.post({"pinfl": BIRTHS[0].pinfl}, **{"X-Bus-Callback": "file:///etc/passwd"})
    assert bad.status_code == 400


def test_only_the_client_who_asked_sees_the_result(bus: Bus) -> None:
    r = bus.post({"pinfl": BIRTHS[2].pinfl})
    location = r.headers["Location"]
    assert bus.get(location, token=bus.other_token).status_code == 404
    assert bus.get("/v1/messages/00000000-0000-0000-0000-000000000000").status_code == 404
    assert bus.get(location, token="nope").status_code == 401
    assert bus.result(location).status_code == 200


def test_the_signed_result_is_pushed_to_the_callback_with_retries(bus: Bus) -> None:
    receiver = Receiver(fail_first=1)
    with serve_in_thread(receiver.app()) as hook:
        r = bus.post({"pinfl": BIRTHS[3].pinfl}, **{"X-Bus-Callback": f"{hook.url}/hook"})
        assert r.status_code == 202
        give_up = time.monotonic() + 10
        while len(receiver.seen) < 2 and time.monotonic() < give_up:
            time.sleep(0.05)
    assert len(receiver.seen) == 2  # refused once, delivered at the retry
    headers, body = receiver.seen[1]
    assert headers["x-bus-message-id"] == r.headers["X-Bus-Message-Id"]
    assert headers["x-bus-status"] == "200" and headers["x-bus-request-number"]
    import json

    answer: dict[str, Any] = json.loads(body)
    assert verify_answer(answer, bus.keys / "civil-registry.pub", "civil-registry")
    # the delivery itself is signed by the portal's bus node, over the exact bytes
    portal = JwsVerifier(StaticTrustStore.from_files({"portal": bus.keys / "portal.pub"}))
    assert portal.verify(body, headers["x-bus-signature"]).member == "portal"
    with pytest.raises(SigningError):
        portal.verify(body + b" ", headers["x-bus-signature"])
    assert body == bus.get(r.headers["Location"]).content  # the same bytes as polled


def test_an_answer_that_comes_after_the_node_restarted_is_kept(tmp_path: Path) -> None:
    """The node stops while the agency is still answering; the next process finishes it."""
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    with serve_in_thread(SlowAgency(tmp_path / "civil.db", 1.0),
                         timeout_graceful_shutdown=1) as agency:
        path = write_config(
            tmp_path,
            residence_url="http://127.0.0.1:9",
            cadastre_db=cadastre.create_database(tmp_path / "c.db"),
            token_sha256=digest,
            civil_wsdl=f"{agency.url}{civil_registry.WSDL_PATH}?wsdl",
        )
        with serve_in_thread(create_app(Node(load_settings(path)))) as node:
            first = Bus(node.url, token, token, tmp_path / "keys")
            r = first.post({"pinfl": BIRTHS[0].pinfl})
            assert r.status_code == 202
            location = r.headers["Location"]
            assert first.get(location).status_code == 202
        with serve_in_thread(create_app(Node(load_settings(path)))) as node:
            again = Bus(node.url, token, token, tmp_path / "keys")
            done = again.result(location, timeout=15)
            assert done.status_code == 200, done.text
            answer = done.json()
            assert answer["payload"]["number"] == BIRTHS[0].certificate
            assert verify_answer(answer, tmp_path / "keys" / "civil-registry.pub", "civil-registry")


def test_a_row_left_pending_by_an_older_version_is_finished_as_overdue(tmp_path: Path) -> None:
    store = MessageStore(tmp_path / "messages.db")
    try:
        store.create("m-1", client="portal", service=CIVIL, correlation="m-1",
                     expires_at=time.time() + 60, callback=None)
        store._db.execute("UPDATE messages SET expires_at = NULL")  # as written before 2026-11
        assert [r.message_id for r in store.overdue(time.time())] == ["m-1"]
        assert store.finish("m-1", status=504, media_type="application/problem+json", body=b"{}")
        assert not store.finish("m-1", status=200, media_type="application/json", body=b"{}")
        record = store.get("m-1", "portal")
        assert record is not None and (record.state, record.status) == ("done", 504)
        assert store.get("m-1", "cadastre") is None
    finally:
        store.close()


def test_callbacks_the_policy_does_not_allow_are_refused_at_once(bus: Bus) -> None:
    for url in ("https://evil.example.org/hook", "http://10.0.0.1/hook",
                "http://169.254.169.254/latest/meta-data"):
        r = bus.post({"pinfl": BIRTHS[0].pinfl}, **{"X-Bus-Callback": url})
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "callback-refused"
        assert "X-Bus-Callback" in r.json()["detail"]
    # the node takes localhost; the portal has named its own receivers, and localhost is not one
    r = bus.post({"pinfl": BIRTHS[0].pinfl}, **{"X-Bus-Callback": "http://localhost:9/hook"})
    assert r.status_code == 422 and "members.portal.callback_hosts" in r.json()["detail"]


@dataclass
class _Headers:
    """What AsyncRequests.callback_of reads of a request."""

    headers: dict[str, str]


def _policy_node(**callbacks: Any) -> Any:
    """What AsyncRequests reads of a node to deliver callbacks: its settings."""
    from types import SimpleNamespace

    from bus.config.settings import BusSettings

    return SimpleNamespace(name="n", settings=BusSettings(callbacks=callbacks))


@pytest.mark.parametrize("reachable", [True, False])
def test_a_callback_goes_to_the_checked_address_or_nowhere(reachable: bool) -> None:
    """The name resolves to loopback (as a DNS rebinding would make it): delivered there only
    when the policy allows loopback, with the name kept in Host; otherwise never connected."""
    from bus.gateway.asynchronous import AsyncRequests

    receiver = Receiver(fail_first=0)
    networks = ["127.0.0.0/8"] if reachable else []
    asynchronous = AsyncRequests(
        _policy_node(allowed_hosts=["hooks.portal.example.gov"], require_https=False,
                     allowed_networks=networks),
        callback_delays=(0.05,),
    )
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    asynchronous.callbacks.resolve = resolve
    with serve_in_thread(receiver.app()) as hook:
        port = httpx.URL(hook.url).port
        url = f"http://hooks.portal.example.gov:{port}/hook"
        asynchronous.callback_of(_Headers({"x-bus-callback": url}), "portal")  # taken at submit
        asyncio.run(asynchronous._deliver(url, "m-1", 200, "application/json", b"{}", "N-1"))
    assert asked == ["hooks.portal.example.gov"]  # resolved once: refused, or delivered at once
    if reachable:
        headers, body = receiver.seen[0]
        assert headers["host"] == f"hooks.portal.example.gov:{port}" and body == b"{}"
    else:
        assert receiver.seen == []
