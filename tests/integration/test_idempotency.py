"""``Idempotency-Key`` on the asking routes: the first answer again, never a second execution."""

from __future__ import annotations

import uuid

import httpx
import pytest

from bus.gateway.bundle import BUNDLE_PATH
from demo.data import AZIZ, DILNOZA, UNKNOWN_PINFL
from demo.scenario import PROPERTY, RESIDENCE, DemoStack

pytestmark = pytest.mark.slow
PURPOSE = {"X-Bus-Purpose": "housing-subsidy"}


def _calls(stack: DemoStack, provider: str, service: str, outcome: str = "ok") -> float:
    value = stack.node.metrics.registry.get_sample_value(
        "bus_adapter_calls_total", {"provider": provider, "service": service, "outcome": outcome}
    )
    return value or 0.0


def _ask(portal: httpx.Client, key: str, pinfl: str = AZIZ.pinfl, service: str = PROPERTY,
         purpose: str = "housing-subsidy", **params: str) -> httpx.Response:
    return portal.post(f"/v1/services/{service}", json={"pinfl": pinfl}, params=params,
                       headers={"X-Bus-Purpose": purpose, "Idempotency-Key": key})


def test_the_same_key_gets_the_first_answer_and_the_agency_is_asked_once(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    key = f"order-{uuid.uuid4()}"
    before = _calls(demo_stack, "cadastre", PROPERTY)
    first = _ask(portal, key)
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    again = _ask(portal, key)
    assert again.status_code == 200
    assert again.content == first.content  # byte for byte: the same signed answer
    assert again.headers["idempotent-replayed"] == "true"
    for header in ("x-bus-message-id", "x-bus-request-number", "content-type"):
        assert again.headers[header] == first.headers[header]
    assert _calls(demo_stack, "cadastre", PROPERTY) == before + 1
    replayed = demo_stack.node.metrics.registry.get_sample_value(
        "bus_exchanges_total",
        {"client": "portal", "service": PROPERTY, "outcome": "idempotent-replay"})
    assert replayed is not None and replayed >= 1  # counted as given again, not as asked
    other = _ask(portal, f"order-{uuid.uuid4()}")  # another key is another request
    assert other.headers["x-bus-message-id"] != first.headers["x-bus-message-id"]


def test_the_same_key_with_another_request_is_refused(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    key = str(uuid.uuid4())
    assert _ask(portal, key).status_code == 200
    for other in (
        _ask(portal, key, pinfl=DILNOZA.pinfl),  # another body
        _ask(portal, key, service=RESIDENCE),  # another route
        portal.post(f"/v1/services/{PROPERTY}", json={"pinfl": AZIZ.pinfl}, headers={
            "X-Bus-Purpose": "social-assistance", "Idempotency-Key": key}),  # another purpose
    ):
        assert other.status_code == 422, other.text
        assert other.headers["content-type"] == "application/problem+json"
        assert other.json()["code"] == "idempotency-key-reused"


def test_a_request_refused_before_it_was_sent_does_not_use_up_the_key(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    key = str(uuid.uuid4())
    refused = portal.post(f"/v1/services/{PROPERTY}", json={"pinfl": "123"},
                          headers={**PURPOSE, "Idempotency-Key": key})
    assert refused.status_code == 422 and refused.json()["code"] == "schema-invalid"
    corrected = _ask(portal, key)
    assert corrected.status_code == 200, corrected.text


def test_an_async_request_and_a_bundle_are_taken_once(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    key = str(uuid.uuid4())
    first = _ask(portal, key, mode="async")
    assert first.status_code == 202, first.text
    again = _ask(portal, key, mode="async")
    assert (again.status_code, again.content) == (202, first.content)
    assert again.headers["location"] == first.headers["location"]
    bundle = {"parts": [{"service": PROPERTY, "request": {"pinfl": AZIZ.pinfl}},
                        {"service": RESIDENCE, "request": {"pinfl": AZIZ.pinfl}}]}
    headers = {"X-Bus-Purpose": "social-assistance", "Idempotency-Key": key + "-bundle"}
    one = portal.post(BUNDLE_PATH, json=bundle, headers=headers)
    assert one.status_code == 200, one.text
    two = portal.post(BUNDLE_PATH, json=bundle, headers=headers)
    assert (two.status_code, two.content) == (200, one.content)
    assert two.headers["x-bus-correlation"] == one.headers["x-bus-correlation"]


def test_a_malformed_key_is_400(demo_stack: DemoStack, portal: httpx.Client) -> None:
    for key in ("", "x" * 256, "with space"):
        r = _ask(portal, key)
        assert r.status_code == 400, (key, r.text)
        assert r.json()["code"] == "malformed-request"


def test_keys_are_per_member(demo_stack: DemoStack) -> None:
    """Another token with the same key is another request (here: an unknown token, refused)."""
    key = str(uuid.uuid4())
    r = httpx.post(f"{demo_stack.gateway.url}/v1/services/{PROPERTY}", json={"pinfl": AZIZ.pinfl},
                   headers={**PURPOSE, "Idempotency-Key": key, "X-Bus-User": "u",
                            "Authorization": "Bearer not-a-token"}, timeout=10)
    assert r.status_code == 401


def test_an_answer_of_the_provider_keeps_the_key_even_when_it_is_4xx(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    """A 404 no-data was asked of the agency: the same key gets it again, not a second ask."""
    key = str(uuid.uuid4())
    before = _calls(demo_stack, "residence-registry", RESIDENCE, "no-data")

    def ask() -> httpx.Response:
        return _ask(portal, key, pinfl=UNKNOWN_PINFL, service=RESIDENCE, purpose="child-benefit")

    first = ask()
    assert first.status_code == 404 and first.json()["code"] == "no-data", first.text
    again = ask()
    assert (again.status_code, again.content) == (404, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    assert _calls(demo_stack, "residence-registry", RESIDENCE, "no-data") == before + 1
