"""Problem titles in the language the request chose (``?lang=``, Accept-Language, the node's
default), from every place that answers a problem — a handler, a dependency, a middleware, a
bundle's part — with ``code``, ``type`` and ``detail`` unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from demo.data import PEOPLE
from demo.scenario import RESIDENCE, DemoStack

PERSON = PEOPLE[0]


@pytest.fixture
def anonymous(demo_stack: DemoStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo_stack.gateway.url, timeout=10) as client:
        yield client


def test_unknown_service_in_russian_uzbek_and_english(portal: httpx.Client) -> None:
    url = "/v1/services/nobody/nothing/v1"
    english = portal.post(url, json={}, headers={"X-Bus-Purpose": "x"})
    russian = portal.post(url, json={}, headers={"X-Bus-Purpose": "x", "Accept-Language": "ru"})
    uzbek = portal.post(url + "?lang=uz", json={}, headers={"X-Bus-Purpose": "x",
                                                           "Accept-Language": "ru"})
    assert english.status_code == russian.status_code == uzbek.status_code == 404
    assert english.json()["title"] == "Unknown service"
    assert russian.json()["title"] == "Неизвестная служба"
    assert uzbek.json()["title"] == "Noma’lum xizmat"
    for r, lang in ((english, "en"), (russian, "ru"), (uzbek, "uz")):
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["content-language"] == lang and "Accept-Language" in r.headers["vary"]
        assert int(r.headers["content-length"]) == len(r.content)
    stable = ("type", "code", "detail", "status")
    assert {k: russian.json()[k] for k in stable} == {k: english.json()[k] for k in stable}


def test_a_refusal_before_any_route_is_titled_too(anonymous: httpx.Client) -> None:
    """401 from the token check, 404 from no route at all, 405 from the router."""
    missing = anonymous.post(f"/v1/services/{RESIDENCE}", json={"pinfl": PERSON.pinfl},
                             headers={"Accept-Language": "uz-Latn;q=0.9, en;q=0.1"})
    assert missing.status_code == 401
    assert missing.json()["title"] == "API tokeni yo‘q yoki noto‘g‘ri"
    nowhere = anonymous.get("/no/such/page", headers={"Accept-Language": "ru"})
    assert nowhere.status_code == 404 and nowhere.json()["title"] == "Неизвестная служба"
    wrong = anonymous.delete("/v1/catalog", headers={"Accept-Language": "ru"})
    assert wrong.status_code == 405 and wrong.json()["title"] == "Метод не разрешён"
    assert "allow" in wrong.headers


def test_a_schema_refusal_keeps_its_errors(portal: httpx.Client) -> None:
    r = portal.post(f"/v1/services/{RESIDENCE}", json={"pinfl": "12"},
                    headers={"X-Bus-Purpose": "child-benefit", "Accept-Language": "ru"})
    assert r.status_code == 422
    body = r.json()
    assert body["title"] == "Запрос не соответствует схеме службы"
    assert body["code"] == "schema-invalid" and body["errors"]


def test_a_bundle_part_s_problem_is_titled(portal: httpx.Client) -> None:
    r = portal.post("/v1/bundles", headers={"X-Bus-Purpose": "child-benefit",
                                             "Accept-Language": "ru"},
                    json={"parts": [{"service": "nobody/nothing/v1", "request": {}},
                                    {"service": RESIDENCE, "request": {"pinfl": PERSON.pinfl}}]})
    assert r.status_code == 200, r.text
    refused, answered = r.json()["parts"]
    assert refused["problem"]["title"] == "Неизвестная служба"
    assert refused["problem"]["code"] == "unknown-service" and answered["status"] == 200
    assert r.headers["content-language"] == "ru"


def test_the_node_s_language_when_the_request_names_none_of_ours(
    demo_stack: DemoStack, anonymous: httpx.Client
) -> None:
    settings = demo_stack.node.settings.node
    assert settings.language == "en"  # the default: API clients keep their English titles
    r = anonymous.get("/no/such/page", headers={"Accept-Language": "de, fr;q=0.5"})
    assert r.json()["title"] == "Unknown service" and r.headers["content-language"] == "en"
