"""What the OpenAPI document says, read directly (schemathesis checks the answers against it)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from bus.gateway.problems import MAX_ERRORS
from demo.scenario import CIVIL, RESIDENCE, DemoStack
from schemas.identifiers import PINFL_PATTERN, validate_pinfl

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def doc(demo_stack: DemoStack) -> dict[str, Any]:
    return httpx.get(demo_stack.gateway.url + "/openapi.json", timeout=10).json()  # type: ignore[no-any-return]


def _op(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return doc["paths"][path][method]  # type: ignore[no-any-return]


@pytest.mark.parametrize("method, path, statuses", [
    ("post", f"/v1/services/{RESIDENCE}",
     {"200", "202", "400", "401", "403", "404", "408", "409", "413", "415", "422", "429", "502",
      "503", "504"}),
    ("post", "/v1/bundles", {"200", "202", "400", "401", "408", "409", "413", "415", "422",
                             "429"}),
    ("get", "/v1/documents/{number}", {"200", "401", "404", "410", "429"}),
    ("get", "/verify/{number}", {"200", "404", "429"}),
    ("get", "/v1/messages/{message_id}", {"200", "202", "401", "404", "429", "502", "504"}),
    ("get", "/health/ready", {"200", "503"}),
])
def test_every_status_a_route_answers_is_listed(
    doc: dict[str, Any], method: str, path: str, statuses: set[str]
) -> None:
    responses = _op(doc, method, path)["responses"]
    assert statuses <= set(responses)
    for status, answer in responses.items():
        if status.startswith(("4", "5")) and path != "/health/ready":
            assert set(answer["content"]) >= {PROBLEM}, (path, status)
            assert answer["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}


def test_no_validation_error_schema_the_gateway_never_sends(doc: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "HTTPValidationError" not in str(doc["paths"])


def test_the_bearer_token_is_a_security_scheme(doc: dict[str, Any]) -> None:
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    ask = _op(doc, "post", f"/v1/services/{RESIDENCE}")
    assert ask["security"] == [{"bearer": []}]
    assert all(p["name"].lower() != "authorization" for p in ask["parameters"])
    assert "security" not in _op(doc, "get", "/verify/{number}")


def test_429_says_when_to_retry_and_errors_are_capped(doc: dict[str, Any]) -> None:
    too_many = _op(doc, "get", "/verify/{number}")["responses"]["429"]
    assert too_many["headers"]["Retry-After"]["required"] is True
    errors = doc["components"]["schemas"]["Problem"]["properties"]["errors"]
    assert errors["anyOf"][0]["maxItems"] == MAX_ERRORS


@pytest.mark.parametrize("path", ["/verify/{number}", "/v1/documents/{number}"])
def test_document_pages_offer_html_and_json(doc: dict[str, Any], path: str) -> None:
    assert set(_op(doc, "get", path)["responses"]["200"]["content"]) == {
        "text/html", "application/json"}


def test_the_answer_is_described_as_minimised(doc: dict[str, Any]) -> None:
    ok = _op(doc, "post", f"/v1/services/{RESIDENCE}")["responses"]["200"]
    envelope = ok["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    payload = doc["components"]["schemas"][envelope]["properties"]["payload"]["$ref"]
    seen = doc["components"]["schemas"][payload.rsplit("/", 1)[-1]]
    assert payload.endswith("AsSeen") and "required" not in seen and seen["properties"]


def test_an_asynchronous_only_service_requires_mode_async(doc: dict[str, Any]) -> None:
    archive = next(p for p in doc["paths"] if p.startswith("/v1/services/state-archive/"))
    (mode,) = [p for p in _op(doc, "post", archive)["parameters"] if p["name"] == "mode"]
    assert mode["required"] is True and mode["schema"]["enum"] == ["async"]


ASKING = [("post", f"/v1/services/{RESIDENCE}"), ("post", "/v1/bundles")]


@pytest.mark.parametrize("method, path", ASKING)
def test_idempotency_and_callbacks_are_documented(
    doc: dict[str, Any], method: str, path: str
) -> None:
    op = _op(doc, method, path)
    params = {p["name"]: p for p in op["parameters"] if p["in"] == "header"}
    key, callback = params["Idempotency-Key"], params["X-Bus-Callback"]
    assert key["required"] is False and key["schema"]["pattern"] == "^[!-~]{1,255}$"
    assert callback["required"] is False and callback["schema"] == {"type": "string"}
    assert "mode=async only" in callback["description"] and "https" in callback["description"]
    responses = op["responses"]
    in_use = responses["409"]
    assert in_use["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert in_use["headers"]["Retry-After"]["schema"]["type"] == "integer"
    for status in ("200", "202", "409", "422"):  # an answer kept is given again, flagged
        assert responses[status]["headers"]["Idempotent-Replayed"]["schema"]["enum"] == ["true"]


def test_the_documented_key_is_the_key_the_gateway_takes(
    doc: dict[str, Any], portal: httpx.Client
) -> None:
    (key,) = [p for p in _op(doc, *ASKING[0])["parameters"] if p["name"] == "Idempotency-Key"]
    pattern = key["schema"]["pattern"]
    for value, taken in (("k" * 255, True), ("k" * 256, False), ("a b", False), ("~!", True)):
        assert bool(re.fullmatch(pattern, value)) is taken
        r = portal.post(f"/v1/services/{RESIDENCE}?mode=async", json={"pinfl": "31505862740013"},
                        headers={"X-Bus-Purpose": "child-benefit", "X-Bus-User": "clerk",
                                 "Idempotency-Key": value})
        assert (r.status_code == 202) is taken, (value, r.text)


def test_a_service_purpose_is_one_its_access_rights_name(
    doc: dict[str, Any], portal: httpx.Client
) -> None:
    catalog = portal.get("/v1/catalog").json()
    listed = {e["service"]: e["purposes"] for e in catalog["services"]}
    for path in doc["paths"]:
        if path.startswith("/v1/services/"):
            (purpose,) = [p for p in _op(doc, "post", path)["parameters"]
                          if p["name"] == "X-Bus-Purpose"]
            assert purpose["schema"]["enum"] == listed[path.removeprefix("/v1/services/")]
    (residence,) = [p for p in _op(doc, *ASKING[0])["parameters"] if p["name"] == "X-Bus-Purpose"]
    assert residence["schema"]["enum"] == ["child-benefit", "social-assistance"]


def test_x_bus_user_is_documented_as_not_a_personal_identifier(doc: dict[str, Any]) -> None:
    for method, path in [*ASKING, ("get", "/v1/citizens/me/access-log")]:
        (user,) = [p for p in _op(doc, method, path)["parameters"] if p["name"] == "X-Bus-User"]
        refused = user["schema"]["not"]["pattern"]
        assert re.fullmatch(refused, "31505862740013") and re.fullmatch(refused, "305419896")
        assert not re.fullmatch(refused, "officer-17")


def test_a_method_not_declared_is_405_with_allow(doc: dict[str, Any]) -> None:
    answer = doc["components"]["responses"]["MethodNotAllowed"]
    assert answer["headers"]["Allow"]["required"] is True
    assert set(answer["content"]) == {PROBLEM}


def test_exactly_one_of_pinfl_and_number(doc: dict[str, Any]) -> None:
    ask = _op(doc, "post", f"/v1/services/{CIVIL}")
    ref = ask["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert [one["required"] for one in schema["oneOf"]] == [["pinfl"], ["number"]]


@pytest.mark.parametrize("pinfl, valid", [
    ("31505862740013", True), ("32902000000000", False), ("52902000000000", True),
    ("32902040000000", True), ("33102860000000", False), ("33104860000000", False),
    ("33105860000000", True), ("70101900000000", False), ("30013860000000", False),
])
def test_the_pinfl_pattern_is_the_rule(pinfl: str, valid: bool) -> None:
    assert bool(re.fullmatch(PINFL_PATTERN, pinfl)) is valid
    try:
        validate_pinfl(pinfl)
        accepted = True
    except ValueError:
        accepted = False
    assert accepted is valid
