"""The service catalogue on the demo node: every configured service, valid against its own
published schema, every link working, readable without a token, no personal data; the page."""

from __future__ import annotations

import copy
import html
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import jsonschema
import pytest
from lxml import etree

from bus.gateway.catalog import CATALOG_PATH
from demo.data import PEOPLE
from demo.scenario import DemoStack


@pytest.fixture
def anonymous(demo_stack: DemoStack) -> Iterator[httpx.Client]:
    """A client with no token: what a new agency's developer has."""
    with httpx.Client(base_url=demo_stack.gateway.url, timeout=10) as client:
        yield client


@pytest.fixture
def catalog(anonymous: httpx.Client) -> dict[str, Any]:
    r = anonymous.get(CATALOG_PATH)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body: dict[str, Any] = r.json()
    return body


def _pointer(document: Any, pointer: str) -> Any:
    for token in pointer.lstrip("/").split("/"):
        document = document[unquote(token).replace("~1", "/").replace("~0", "~")]
    return document


def test_the_catalogue_lists_every_configured_service_and_validates_against_its_schema(
    demo_stack: DemoStack, anonymous: httpx.Client, catalog: dict[str, Any]
) -> None:
    settings = demo_stack.node.settings
    assert {e["service"] for e in catalog["services"]} == set(settings.services)
    assert catalog["count"] == len(settings.services) == len(catalog["services"])
    schema = anonymous.get(f"{CATALOG_PATH}.schema.json").json()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(catalog, schema, cls=jsonschema.Draft202012Validator)
    # the schema is not vacuous: an entry without its provider, or with an unknown key, fails
    for broken in ("provider", "extra"):
        wrong = copy.deepcopy(catalog)
        if broken == "provider":
            del wrong["services"][0]["provider"]
        else:
            wrong["services"][0]["links"]["ftp"] = "ftp://x"
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, schema, cls=jsonschema.Draft202012Validator)


def test_each_entry_says_who_provides_it_why_and_how_fast(
    demo_stack: DemoStack, catalog: dict[str, Any]
) -> None:
    settings = demo_stack.node.settings
    by_id = {e["service"]: e for e in catalog["services"]}
    for sid, svc in settings.services.items():
        entry = by_id[sid]
        member = sid.split("/")[0]
        assert entry["provider"] == {"code": member, "name": settings.members[member].name}
        expected = {p for r in settings.access if r.service == sid for p in r.purpose}
        assert set(entry["purposes"]) == expected
        assert entry["answer"]["timeout_s"] == svc.timeout_s
        assert entry["request_schema"] == svc.request_model().model_json_schema()
        assert [v["service"] for v in entry["versions"]] == [sid]
    birth = by_id["civil-registry/birth-certificate/v1"]
    assert birth["answer"] == {"mode": "sync", "answered_by": "system", "timeout_s": 5.0,
                               "expected": "within 5 s"}
    assert set(birth["description"]) == {"uz", "ru", "en"} and birth["legal_basis"]
    archive = by_id["state-archive/archival-birth-record/v1"]
    assert archive["answer"]["mode"] == "async" and archive["answer"]["answered_by"] == "official"
    assert archive["answer"]["expected"] == "within 3 days"


def test_every_link_in_the_catalogue_works(
    anonymous: httpx.Client, catalog: dict[str, Any]
) -> None:
    openapi = anonymous.get("/openapi.json").json()
    for entry in catalog["services"]:
        links = entry["links"]
        wsdl = anonymous.get(links["wsdl"])
        assert wsdl.status_code == 200, links["wsdl"]
        root = etree.fromstring(wsdl.content)
        assert root.tag == "{http://schemas.xmlsoap.org/wsdl/}definitions"
        assert links["soap"] in wsdl.text  # its soap:address is the endpoint named
        for part in ("request", "response"):
            r = anonymous.get(links[f"{part}_schema"])
            assert r.status_code == 200, links[f"{part}_schema"]
            assert r.json() == entry[f"{part}_schema"]
            jsonschema.Draft202012Validator.check_schema(r.json())
        path, _, fragment = links["openapi"].partition("#")
        assert path == "/openapi.json"
        operation = _pointer(openapi, fragment)
        assert operation["requestBody"]["content"]["application/json"]
        assert anonymous.get(links["self"]).json() == entry
        # the endpoint is the service's route: without a token it is 401, not 404
        asked = anonymous.post(links["endpoint"], json={})
        assert asked.status_code == 401 and asked.json()["code"] == "unauthenticated"


def test_a_request_schema_validates_what_the_service_takes(
    anonymous: httpx.Client, catalog: dict[str, Any]
) -> None:
    entry = next(e for e in catalog["services"] if e["service"].startswith("cadastre/"))
    schema = anonymous.get(entry["links"]["request_schema"]).json()
    jsonschema.validate({"pinfl": PEOPLE[0].pinfl}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"pinfl": "12"}, schema)


def test_the_catalogue_holds_no_personal_data_and_no_agency_addresses(
    demo_stack: DemoStack, anonymous: httpx.Client
) -> None:
    r = anonymous.get(CATALOG_PATH)
    text = r.text
    # the only PINFL-shaped numbers are the shared schemas' documented examples
    examples: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            examples.update(str(x) for x in value.get("examples", []) if isinstance(x, str))
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(r.json())
    assert set(re.findall(r"(?<!\d)\d{14}(?!\d)", text)) <= examples
    for person in PEOPLE:
        assert person.pinfl not in text
    assert demo_stack.residence.url not in text and "sqlite:" not in text
    assert "api_token" not in text and "token_sha256" not in text


def test_unknown_services_are_problems(anonymous: httpx.Client) -> None:
    for path in (f"{CATALOG_PATH}/nobody/nothing/v1",
                 f"{CATALOG_PATH}/nobody/nothing/v1/request.schema.json",
                 f"{CATALOG_PATH}/cadastre/property-ownership/v1/other.schema.json"):
        r = anonymous.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "unknown-service"


def test_the_page_shows_every_service_in_the_language_asked(
    demo_stack: DemoStack, anonymous: httpx.Client
) -> None:
    settings = demo_stack.node.settings
    page = anonymous.get("/catalog")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-language"] == "en"
    for sid, svc in settings.services.items():
        assert f'id="{sid}"' in page.text and f"/soap/{sid}?wsdl" in page.text
        assert svc.description is not None
        assert html.escape(svc.description.en) in page.text
    residence = settings.services["residence-registry/residence-registration/v1"]
    assert residence.description is not None
    russian = anonymous.get("/catalog", headers={"Accept-Language": "de, ru;q=0.8, en;q=0.5"})
    assert russian.headers["content-language"] == "ru" and '<html lang="ru">' in russian.text
    assert residence.description.ru in russian.text
    uzbek = anonymous.get("/catalog?lang=uz", headers={"Accept-Language": "ru"})
    assert html.escape(residence.description.uz) in uzbek.text
