"""Bundles (once-only): one request, several documents, each part answered on its own."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
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
from bus.gateway.bundle import BUNDLE_PATH, MAX_PARTS
from bus.node.wiring import Node
from demo import cadastre, residence_registry
from demo.archive import wait_for_task
from demo.data import (
    ARCHIVE_BIRTHS,
    AZIZ,
    BIRTHS,
    DILNOZA,
    UNKNOWN_PINFL,
    birth_certificate,
    expected_residence,
)
from demo.scenario import CIVIL, PROPERTY, RESIDENCE, DemoStack, verify_answer, write_config
from demo.servers import serve_in_thread
from signing import generate_member_key

pytestmark = pytest.mark.slow
ARCHIVE = "state-archive/archival-birth-record/v1"


def ask(portal: httpx.Client, parts: list[tuple[str, dict[str, Any]]],
        purpose: str = "social-assistance", **headers: str) -> httpx.Response:
    return portal.post(BUNDLE_PATH, headers={"X-Bus-Purpose": purpose, **headers},
                       json={"parts": [{"service": s, "request": r} for s, r in parts]})


def test_every_part_answers_on_its_own_and_the_answers_verify(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    r = ask(portal, [
        (RESIDENCE, {"pinfl": AZIZ.pinfl}),
        (PROPERTY, {"pinfl": AZIZ.pinfl}),
        (CIVIL, {"pinfl": BIRTHS[0].pinfl}),
        (RESIDENCE, {"pinfl": UNKNOWN_PINFL}),
        (RESIDENCE, {"pinfl": "123"}),
        ("tax/income/v1", {"pinfl": AZIZ.pinfl}),
        (ARCHIVE, {"pinfl": AZIZ.pinfl}),
    ])
    assert r.status_code == 200, r.text
    body = r.json()
    parts = body["parts"]
    assert [(p["service"], p["status"]) for p in parts] == [
        (RESIDENCE, 200), (PROPERTY, 200), (CIVIL, 200), (RESIDENCE, 404), (RESIDENCE, 422),
        ("tax/income/v1", 404), (ARCHIVE, 400)]
    assert [p.get("problem", {}).get("code") for p in parts[3:]] == [
        "no-data", "schema-invalid", "unknown-service", "async-required"]
    assert parts[4]["problem"]["errors"][0]["loc"] == ["pinfl"]
    assert "123" not in json.dumps(parts[4]["problem"])  # fields named, values never echoed
    for part, provider in zip(parts[:3], ("residence-registry", "cadastre", "civil-registry"),
                              strict=True):
        answer = part["answer"]
        assert verify_answer(answer, demo_stack.trust_for(provider), provider)
        assert answer["correlation"] == part["message_id"]  # it answers that part's request
        assert answer["service"] == part["service"] and answer["kind"] == "response"
        assert portal.get(f"/v1/documents/{part['number']}").status_code == 200
    expected = expected_residence(AZIZ.pinfl)
    assert expected is not None
    assert parts[0]["answer"]["payload"] == expected.model_dump(mode="json")
    assert "registry_office" not in parts[2]["answer"]["payload"]  # minimised as when alone
    # the parts' requests share the bundle's correlation (the conversation)
    asked = {e.message_id: e.correlation for e in demo_stack.node.audit.store.entries()}
    assert {asked[p["message_id"]] for p in parts[:4]} == {body["correlation"]}
    assert r.headers["X-Bus-Correlation"] == body["correlation"]


def test_a_part_the_purpose_does_not_allow_is_refused_and_audited_alone(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    correlation = "0b9c4a52-6f1e-4d7a-9c3e-6f0a1b2c3d4e"
    r = ask(portal, [(RESIDENCE, {"pinfl": DILNOZA.pinfl}), (PROPERTY, {"pinfl": DILNOZA.pinfl})],
            purpose="child-benefit", **{"X-Bus-Correlation": correlation})
    assert r.status_code == 200
    parts = r.json()["parts"]
    assert [p["status"] for p in parts] == [200, 403]
    assert parts[1]["problem"]["code"] == "access-denied" and "answer" not in parts[1]
    entries = [e for e in demo_stack.node.audit.store.entries() if e.correlation == correlation]
    assert sorted((e.service, e.side, e.outcome) for e in entries) == [
        (PROPERTY, "gateway", "access-denied"), (RESIDENCE, "provider", "ok")]
    metrics = portal.get("/metrics").text
    assert (f'bus_exchanges_total{{client="portal",outcome="access-denied",service="{PROPERTY}"}}'
            in metrics)


def test_an_async_bundle_waits_for_the_archivist_while_the_rest_is_answered(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    record = ARCHIVE_BIRTHS[0]
    r = portal.post(BUNDLE_PATH, params={"mode": "async"}, headers={
        "X-Bus-Purpose": "social-assistance"}, json={"parts": [
            {"service": RESIDENCE, "request": {"pinfl": record.pinfl}},
            {"service": ARCHIVE, "request": {"pinfl": record.pinfl}},
            {"service": PROPERTY, "request": {"pinfl": "123"}}]})
    assert r.status_code == 202, r.text
    body = r.json()
    assert [p["status"] for p in body["parts"]] == [202, 202, 422]  # refused at once, not kept
    assert r.headers["Location"] == body["location"] == f"{BUNDLE_PATH}/{body['correlation']}"

    def progress() -> dict[str, Any]:
        got = portal.get(body["location"])
        assert got.status_code == 200, got.text
        return dict(got.json())

    give_up = time.monotonic() + 10
    while progress()["parts"][0]["status"] == 202:  # the registry answers in milliseconds
        assert time.monotonic() < give_up
        time.sleep(0.05)
    now = progress()
    assert now["state"] == "pending" and [p["status"] for p in now["parts"]] == [200, 202]
    desk = demo_stack.node.inbox
    assert desk is not None
    task_id = body["parts"][1]["message_id"]
    wait_for_task(desk, task_id)
    desk.answer(task_id, birth_certificate(record).model_dump(mode="json"), operator="archivist")
    give_up = time.monotonic() + 10
    while (now := progress())["state"] == "pending":
        assert time.monotonic() < give_up
        time.sleep(0.05)
    residence, archive = now["parts"]
    assert verify_answer(residence["answer"], demo_stack.trust_for("residence-registry"),
                         "residence-registry")
    assert verify_answer(archive["answer"], demo_stack.trust_for("state-archive"),
                         "state-archive")
    assert archive["answer"]["payload"]["number"] == record.certificate and archive["number"]
    # only the client who asked sees it
    other = httpx.get(demo_stack.gateway.url + body["location"])
    assert other.status_code == 401
    assert portal.get(f"{BUNDLE_PATH}/{uuid.uuid4()}").status_code == 404


@pytest.mark.parametrize("body", [
    {"parts": []},
    {"parts": [{"service": RESIDENCE, "request": {"pinfl": AZIZ.pinfl}}] * (MAX_PARTS + 1)},
    {"parts": [{"service": RESIDENCE}]},
    {"parts": [{"service": RESIDENCE, "request": {}, "extra": 1}]},
    {"documents": []},
])
def test_a_malformed_bundle_is_one_problem(portal: httpx.Client, body: dict[str, Any]) -> None:
    r = portal.post(BUNDLE_PATH, json=body, headers={"X-Bus-Purpose": "social-assistance"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "schema-invalid"


def test_a_bundle_needs_a_token_and_the_headers(demo_stack: DemoStack) -> None:
    body = {"parts": [{"service": RESIDENCE, "request": {"pinfl": AZIZ.pinfl}}]}
    url = demo_stack.gateway.url + BUNDLE_PATH
    assert httpx.post(url, json=body).status_code == 401
    r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {demo_stack.token}"})
    assert r.status_code == 400 and "X-Bus-Purpose" in r.json()["detail"]


def test_a_bundle_costs_one_request_per_part_of_the_rate_limit(tmp_path: Path) -> None:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    config = write_config(tmp_path, residence_url="http://127.0.0.1:9", token_sha256=digest,
                          cadastre_db=cadastre.create_database(tmp_path / "c.db"))
    settings = yaml.safe_load(config.read_text())
    settings["members"]["portal"]["rate_limit"] = {"per_second": 0.01, "burst": 2}
    config.write_text(yaml.safe_dump(settings))
    with serve_in_thread(create_app(Node(load_settings(config)))) as node, \
            httpx.Client(base_url=node.url, timeout=10, headers={
                "Authorization": f"Bearer {token}", "X-Bus-User": "officer-9"}) as portal:
        r = ask(portal, [(PROPERTY, {"pinfl": p.pinfl}) for p in (AZIZ, DILNOZA, AZIZ)],
                purpose="housing-subsidy")
        assert [p["status"] for p in r.json()["parts"]] == [200, 200, 200]
        # three parts against a burst of two: the next request waits the debt off
        again = ask(portal, [(PROPERTY, {"pinfl": AZIZ.pinfl})], purpose="housing-subsidy")
        assert again.status_code == 429 and int(again.headers["Retry-After"]) > 100


class Rendezvous:
    """The residence registry, answering only once ``together`` requests are in at once
    (else 503 after ``wait_s``): a bundle asked one part after the other never gets through."""

    def __init__(self, db: Path, together: int, wait_s: float = 3.0) -> None:
        self.app = residence_registry.create_app(db)
        self.together, self.wait_s = together, wait_s
        self.arrived = 0
        self.all_in: asyncio.Event | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.all_in is None:
            self.all_in = asyncio.Event()
        self.arrived += 1
        if self.arrived >= self.together:
            self.all_in.set()
        try:
            await asyncio.wait_for(self.all_in.wait(), self.wait_s)
        except TimeoutError:
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"alone"})
            return None
        return await self.app(scope, receive, send)


@pytest.fixture
def rendezvous_bus(tmp_path: Path) -> Iterator[tuple[httpx.Client, Rendezvous]]:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    agency = Rendezvous(residence_registry.seed(tmp_path / "residence.db"), together=3)
    with serve_in_thread(agency) as residence:
        config = write_config(tmp_path, residence_url=residence.url, token_sha256=digest,
                              cadastre_db=cadastre.create_database(tmp_path / "c.db"))
        with serve_in_thread(create_app(Node(load_settings(config)))) as node, \
                httpx.Client(base_url=node.url, timeout=30, headers={
                    "Authorization": f"Bearer {token}", "X-Bus-User": "officer-9"}) as portal:
            yield portal, agency


def test_the_parts_are_asked_at_the_same_time(
    rendezvous_bus: tuple[httpx.Client, Rendezvous],
) -> None:
    portal, agency = rendezvous_bus
    r = ask(portal, [(RESIDENCE, {"pinfl": p}) for p in (AZIZ.pinfl, DILNOZA.pinfl, UNKNOWN_PINFL)])
    assert [p["status"] for p in r.json()["parts"]] == [200, 200, 404]
    assert agency.arrived == 3  # no retry was needed


def test_one_failing_agency_does_not_sink_the_rest(
    rendezvous_bus: tuple[httpx.Client, Rendezvous], caplog: pytest.LogCaptureFixture,
) -> None:
    portal, _ = rendezvous_bus  # one residence request alone never gets an answer
    with caplog.at_level(logging.INFO, logger="bus"):
        r = ask(portal, [(RESIDENCE, {"pinfl": AZIZ.pinfl}), (PROPERTY, {"pinfl": AZIZ.pinfl})])
    parts = r.json()["parts"]
    assert parts[0]["status"] in (502, 503, 504) and parts[1]["status"] == 200
    assert parts[0]["problem"]["code"] in (
        "provider-unavailable", "provider-timeout", "deadline-exceeded")
    assert AZIZ.pinfl not in caplog.text  # no personal data in the node's log
