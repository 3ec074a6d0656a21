"""What a caller sends is checked before a log line or the audit sees it, and bodies are JSON,
strictly: each refusal is its own problem document, audited, and nothing reaches an agency."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from lxml import etree

from bus.core.errors import MalformedRequest, UnsupportedMediaType
from bus.gateway.json_body import MAX_DEPTH, read_json
from bus.gateway.problems import MAX_ERRORS
from demo.data import AZIZ, DILNOZA
from demo.scenario import CIVIL, RESIDENCE, DemoStack

URL = f"/v1/services/{RESIDENCE}"
OK_HEADERS = {"X-Bus-Purpose": "child-benefit", "X-Bus-User": "officer-17"}


@pytest.fixture
def untouched(demo_stack: DemoStack) -> Iterator[None]:
    """The agency is not called by the test."""
    app = demo_stack.residence.server.config.app
    before = app.state.lookups
    yield
    assert app.state.lookups == before, "the agency was called"


def problem(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == code and body["status"] == status
    assert body["type"].endswith("/" + code) and body["title"] and body["detail"]
    return body


def entries_of(stack: DemoStack, correlation: str) -> list[object]:
    return [e for e in stack.node.audit.store.entries() if e.correlation == correlation]


# -- headers ---------------------------------------------------------------------------------

BAD_USERS = [
    pytest.param(b"", id="empty"),
    pytest.param(b"a\tb", id="tab"),
    pytest.param(b"a\x7fb", id="DEL"),
    pytest.param(b"a" * 201, id="too-long"),
    pytest.param("Жамшид".encode(), id="utf8-bytes"),
    pytest.param("a\u2028b".encode(), id="line-separator"),
    pytest.param(b"a\xc2\x85b", id="NEL"),
    pytest.param(b"\xff\xfe", id="latin-1"),
    pytest.param(b"a\x1bb[31m", id="escape"),
    pytest.param(b"a\x08b", id="backspace"),
]


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize("user", BAD_USERS)
def test_a_user_that_is_not_printable_text_is_400(
    demo_stack: DemoStack, portal: httpx.Client, user: bytes
) -> None:
    correlation = str(uuid.uuid4())
    r = portal.post(URL, json={"pinfl": AZIZ.pinfl}, headers={
        "X-Bus-Purpose": "child-benefit", "X-Bus-User": user, "X-Bus-Correlation": correlation})
    body = problem(r, 400, "malformed-request")
    assert "X-Bus-User" in str(body["detail"])
    (entry,) = entries_of(demo_stack, correlation)  # audited, without the value sent
    assert entry.user == "-" and entry.outcome == "malformed-request"  # type: ignore[attr-defined]


STIR = "305419896"  # a taxpayer number's shape: 9 digits


@pytest.mark.usefixtures("untouched")
def test_a_correlation_whose_hex_holds_nine_digits_reaches_the_audit_entry(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    """A random UUID's last group holds nine digits in a row now and then: it is a correlation,
    not a taxpayer number, and the refusal's audit entry keeps it (it was dropped, one refusal
    in about 150)."""
    correlation = "0a1b2c3d-1e2f-4a5b-8c6d-a123456789bc"
    r = portal.post(URL, json={"pinfl": AZIZ.pinfl}, headers={
        "X-Bus-Purpose": "child-benefit", "X-Bus-User": "", "X-Bus-Correlation": correlation})
    problem(r, 400, "malformed-request")
    (entry,) = entries_of(demo_stack, correlation)
    assert entry.outcome == "malformed-request"  # type: ignore[attr-defined]


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize("path, body", [
    pytest.param(URL, {"pinfl": DILNOZA.pinfl}, id="service"),
    pytest.param(f"{URL}?mode=async", {"pinfl": DILNOZA.pinfl}, id="service-async"),
    pytest.param("/v1/bundles", {"parts": [{"service": RESIDENCE,
                                            "request": {"pinfl": DILNOZA.pinfl}}]}, id="bundle"),
])
@pytest.mark.parametrize("user", [AZIZ.pinfl, STIR, f"officer {AZIZ.pinfl}", f"{STIR}-desk"],
                         ids=["pinfl", "stir", "pinfl-inside", "stir-inside"])
def test_a_user_that_is_a_personal_identifier_is_400(
    demo_stack: DemoStack, portal: httpx.Client, path: str, body: object, user: str
) -> None:
    """X-Bus-User names an official: a PINFL or STIR there would be kept unhashed in the audit
    log and written to log lines, so it is refused, saying why, without echoing it."""
    correlation = str(uuid.uuid4())
    r = portal.post(path, json=body, headers={
        "X-Bus-Purpose": "child-benefit", "X-Bus-User": user, "X-Bus-Correlation": correlation})
    detail = str(problem(r, 400, "malformed-request")["detail"])
    assert "X-Bus-User names the official" in detail and "not a personal identifier" in detail
    assert user not in r.text
    (entry,) = entries_of(demo_stack, correlation)  # audited, without the value sent
    assert entry.user == "-" and entry.outcome == "malformed-request"  # type: ignore[attr-defined]


def test_the_access_log_refuses_a_personal_identifier_as_user(portal: httpx.Client) -> None:
    r = portal.get("/v1/citizens/me/access-log", headers={
        "X-Bus-Subject": AZIZ.pinfl, "X-Bus-Purpose": "citizen-request", "X-Bus-User": STIR})
    assert "not a personal identifier" in str(problem(r, 400, "malformed-request")["detail"])
    assert STIR not in r.text


@pytest.mark.parametrize("user", ["12345678", "1234567890", "123456789012345", "officer 30541989",
                                  "3150586274001x", "desk-1234567890123"])
def test_digits_that_are_not_a_personal_identifier_pass(portal: httpx.Client, user: str) -> None:
    r = portal.post(URL, json={"pinfl": DILNOZA.pinfl}, headers={**OK_HEADERS, "X-Bus-User": user})
    assert r.status_code == 200, r.text


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize("purpose", [
    b"", b"child benefit", "pénsion".encode(), b"a" * 101, b"a\x7f", b"a\tb", b"Child-Benefit",
    AZIZ.pinfl.encode(), b"-x",
])
def test_a_purpose_that_is_not_a_code_is_400(portal: httpx.Client, purpose: bytes) -> None:
    r = portal.post(URL, json={"pinfl": AZIZ.pinfl}, headers={"X-Bus-Purpose": purpose})
    assert "X-Bus-Purpose" in str(problem(r, 400, "malformed-request")["detail"])


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize("correlation", [
    "not-a-uuid",
    "------------------------------------",
    str(uuid.uuid4()).upper(),
    uuid.uuid4().hex,
    "00000000-0000-0000-0000-000000000000",
    "3b241101-e2bb-4255-c000-e1b0b1e2c3d4",  # not the RFC's variant
    "{" + str(uuid.uuid4()) + "}",
    "urn:uuid:" + str(uuid.uuid4()),
    str(uuid.uuid4()) + "0",
    AZIZ.pinfl,
])
def test_a_correlation_that_is_not_a_uuid_is_400(
    demo_stack: DemoStack, portal: httpx.Client, correlation: str
) -> None:
    r = portal.post(URL, json={"pinfl": AZIZ.pinfl},
                    headers={**OK_HEADERS, "X-Bus-Correlation": correlation})
    assert "X-Bus-Correlation" in problem(r, 400, "malformed-request")["detail"]  # type: ignore[operator]
    assert entries_of(demo_stack, correlation) == []
    assert correlation not in r.text  # never echoed


@pytest.mark.parametrize("headers", [
    {"X-Bus-User": "Officer 17 (desk 3)"},
    {"X-Bus-User": "x"},
    {"X-Bus-User": "a" * 200},
    {"X-Bus-Correlation": str(uuid.uuid4())},
    {"X-Bus-Correlation": "0190b4d2-7e1c-7a3b-9c4d-5e6f708192a3"},  # a UUIDv7
])
def test_well_formed_values_pass(
    demo_stack: DemoStack, portal: httpx.Client, headers: dict[str, str]
) -> None:
    r = portal.post(URL, json={"pinfl": DILNOZA.pinfl}, headers={**OK_HEADERS, **headers})
    assert r.status_code == 200, r.text
    if "X-Bus-Correlation" in headers:  # the conversation is the one the caller named
        assert entries_of(demo_stack, headers["X-Bus-Correlation"])


@pytest.mark.parametrize("path", [
    f"/v1/services/tax/{AZIZ.pinfl}/v1",
    f"/v1/services/{AZIZ.pinfl}",
    "/v1/services/a%0d%0aInjected: yes/b/v1",
    "/v1/services/" + "x" * 5000,
    "/v1/services/tax/income/v1%00",
    "/v1/services/Налог/доход/v1",
])
def test_an_unknown_service_path_is_never_echoed_unless_well_formed(
    portal: httpx.Client, path: str
) -> None:
    body = problem(portal.post(path, json={"pinfl": AZIZ.pinfl}, headers=OK_HEADERS), 404,
                   "unknown-service")
    assert "service" not in body
    assert AZIZ.pinfl not in str(body["detail"]) and "Injected" not in str(body["detail"])


def test_a_well_formed_unknown_service_is_named(portal: httpx.Client) -> None:
    body = problem(portal.post("/v1/services/tax/income/v1", json={}, headers=OK_HEADERS), 404,
                   "unknown-service")
    assert body["service"] == "tax/income/v1"


# -- bodies ----------------------------------------------------------------------------------

@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize("raw", [
    b'{"pinfl": "31505862740013", "pinfl": "31505862740013"}',
    b'{"pinfl": "31505862740013", "pinfl": "42203902740025"}',
    b'{"pinfl": "31505862740013", "PINFL": 1, "pinfl": 2}',
])
def test_duplicate_keys_are_refused_never_last_one_wins(
    demo_stack: DemoStack, portal: httpx.Client, raw: bytes
) -> None:
    correlation = str(uuid.uuid4())
    r = portal.post(URL, content=raw, headers={
        **OK_HEADERS, "Content-Type": "application/json", "X-Bus-Correlation": correlation})
    body = problem(r, 400, "malformed-request")
    assert "repeats the key 'pinfl'" in str(body["detail"])
    assert AZIZ.pinfl not in r.text and DILNOZA.pinfl not in r.text
    (entry,) = entries_of(demo_stack, correlation)  # an authenticated 400: audited as such
    assert (entry.client, entry.outcome) == ("portal", "malformed-request")  # type: ignore[attr-defined]


def test_a_duplicate_key_that_is_not_a_name_is_not_echoed(portal: httpx.Client) -> None:
    raw = f'{{"{AZIZ.pinfl}": 1, "{AZIZ.pinfl}": 2}}'.encode()
    r = portal.post(URL, content=raw, headers={**OK_HEADERS, "Content-Type": "application/json"})
    assert "repeats a key" in str(problem(r, 400, "malformed-request")["detail"])
    assert AZIZ.pinfl not in r.text


def test_a_duplicate_key_deep_in_a_bundle_is_refused(portal: httpx.Client) -> None:
    raw = (b'{"parts": [{"service": "' + RESIDENCE.encode() + b'", "request": '
           b'{"pinfl": "31505862740013", "pinfl": "42203902740025"}}]}')
    r = portal.post("/v1/bundles", content=raw,
                    headers={**OK_HEADERS, "Content-Type": "application/json"})
    problem(r, 400, "malformed-request")


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize("raw", [
    b'{"pinfl": NaN}', b'{"pinfl": Infinity}', b'{"pinfl": -Infinity}',
    b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
    b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1),
    b'{"pinfl": "\xff\xfe"}',
    b'{"pinfl": "31505862740013"',
    b"",
    b"\xef\xbb\xbf{}",
])
def test_a_body_that_is_not_strict_json_is_400(portal: httpx.Client, raw: bytes) -> None:
    r = portal.post(URL, content=raw, headers={**OK_HEADERS, "Content-Type": "application/json"})
    problem(r, 400, "malformed-request")
    assert "Traceback" not in r.text


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize("content_type", [
    None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/xml", "text/json", "application/jsonp", "application/json-seq",
])
def test_a_body_not_sent_as_json_is_415(
    demo_stack: DemoStack, portal: httpx.Client, content_type: str | None
) -> None:
    headers = {**OK_HEADERS, "X-Bus-Correlation": (correlation := str(uuid.uuid4()))}
    if content_type is not None:
        headers["Content-Type"] = content_type
    r = portal.post(URL, content=b'{"pinfl": "31505862740013"}', headers=headers)
    problem(r, 415, "unsupported-media-type")
    (entry,) = entries_of(demo_stack, correlation)
    assert entry.outcome == "unsupported-media-type"  # type: ignore[attr-defined]


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", "Application/JSON",
    "application/vnd.bus+json",
])
def test_json_media_types_are_taken(portal: httpx.Client, content_type: str) -> None:
    r = portal.post(URL, content=b'{"pinfl": "31505862740013"}',
                    headers={**OK_HEADERS, "Content-Type": content_type})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("body, content_type, error", [
    (b"{}", "text/plain", UnsupportedMediaType),
    (b'{"a": 1, "a": 1}', "application/json", MalformedRequest),
    (b'{"a": [1, {"b": 2, "b": 3}]}', "application/json", MalformedRequest),
])
def test_read_json_is_the_one_rule(body: bytes, content_type: str, error: type[Exception]
                                   ) -> None:
    with pytest.raises(error):
        read_json(body, content_type)


def test_read_json_keeps_what_is_fine() -> None:
    assert read_json(b'{"a": "[{", "b": [1, {"a": 2}]}', "application/json") == {
        "a": "[{", "b": [1, {"a": 2}]}


# -- methods and lists -----------------------------------------------------------------------

@pytest.mark.parametrize("method, path, allowed", [
    ("GET", URL, "POST"),
    ("PUT", URL, "POST"),
    ("DELETE", "/v1/bundles", "POST"),
    ("POST", "/verify/BUS-2026-000001-1", "GET"),
    ("PATCH", "/v1/services", "GET"),
])
def test_a_method_not_answered_is_405_with_allow(
    portal: httpx.Client, method: str, path: str, allowed: str
) -> None:
    r = portal.request(method, path)
    problem(r, 405, "method-not-allowed")
    assert allowed in r.headers["allow"]


def test_error_lists_are_capped(portal: httpx.Client) -> None:
    parts = [{"service": f"bad id {i}", "request": {}, "extra": i} for i in range(20)]
    r = portal.post("/v1/bundles", json={"parts": parts}, headers=OK_HEADERS)
    body = problem(r, 422, "schema-invalid")
    assert len(body["errors"]) == MAX_ERRORS  # type: ignore[arg-type]
    assert "40 field(s)" in str(body["detail"])


# -- the same rules on the SOAP gateway ------------------------------------------------------

def _soap(pinfl: str, purpose: str = "child-benefit", user: str = "clerk-4") -> bytes:
    ns = "urn:bus:service:" + CIVIL.replace("/", ":")
    return (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        '<soap:Header><bus:BusContext xmlns:bus="urn:bus:soap:v1">'
        f"<bus:Purpose>{purpose}</bus:Purpose><bus:User>{user}</bus:User>"
        f"</bus:BusContext></soap:Header><soap:Body><GetBirthCertificate xmlns=\"{ns}\">"
        f"<pinfl>{pinfl}</pinfl></GetBirthCertificate></soap:Body></soap:Envelope>"
    ).encode()


def _fault_code(r: httpx.Response) -> str | None:
    return etree.fromstring(r.content).findtext(".//{urn:bus:soap:v1}Code")


@pytest.mark.parametrize("purpose, user", [
    ("child benefit", "clerk-4"), (AZIZ.pinfl, "clerk-4"), ("child-benefit", "a" * 201),
    ("child-benefit", "clerk&#9;4"), ("child-benefit", "clerk&#x2028;4"),
    ("child-benefit", "Жамшид"),
])
def test_soap_context_follows_the_same_rules(
    demo_stack: DemoStack, portal: httpx.Client, purpose: str, user: str
) -> None:
    before = len(list(demo_stack.node.audit.store.entries()))
    r = portal.post(f"/soap/{CIVIL}", content=_soap(AZIZ.pinfl, purpose, user),
                    headers={"Content-Type": "text/xml"})
    assert r.status_code == 500 and _fault_code(r) == "malformed-request", r.text
    new = list(demo_stack.node.audit.store.entries())[before:]
    assert [(e.outcome, e.client, e.service) for e in new] == [
        ("malformed-request", "portal", CIVIL)]  # audited, without the values refused
    assert new[0].purpose in ("-", "child-benefit") and new[0].user in ("-", "clerk-4")
    assert AZIZ.pinfl not in r.text


@pytest.mark.parametrize("user", [AZIZ.pinfl, STIR], ids=["pinfl", "stir"])
@pytest.mark.parametrize("where", ["BusContext", "X-Bus-User"])
def test_soap_user_that_is_a_personal_identifier_is_a_fault(
    demo_stack: DemoStack, portal: httpx.Client, user: str, where: str
) -> None:
    before = len(list(demo_stack.node.audit.store.entries()))
    if where == "BusContext":
        r = portal.post(f"/soap/{CIVIL}", content=_soap(DILNOZA.pinfl, user=user),
                        headers={"Content-Type": "text/xml"})
    else:
        without = _soap(DILNOZA.pinfl).replace(
            b"<soap:Header><bus:BusContext", b"<soap:Header><bus:Other").replace(
            b"</bus:BusContext></soap:Header>", b"</bus:Other></soap:Header>")
        r = portal.post(f"/soap/{CIVIL}", content=without, headers={
            "Content-Type": "text/xml", "X-Bus-Purpose": "child-benefit", "X-Bus-User": user})
    assert r.status_code == 500 and _fault_code(r) == "malformed-request", r.text
    assert b"not a personal identifier" in r.content and user not in r.text
    new = list(demo_stack.node.audit.store.entries())[before:]
    assert [(e.outcome, e.user) for e in new] == [("malformed-request", "-")]


def test_soap_unknown_service_is_not_echoed(portal: httpx.Client) -> None:
    r = portal.post(f"/soap/tax/{AZIZ.pinfl}/v1", content=_soap(AZIZ.pinfl),
                    headers={"Content-Type": "text/xml"})
    assert _fault_code(r) == "unknown-service"
    assert AZIZ.pinfl not in r.text


@pytest.mark.parametrize("raw, status", [
    (b'{"parts": [], "parts": []}', 400),
    (b'{"parts": []}', 422),
    (b'{"parts": "all of them"}', 422),
])
def test_a_bundle_refused_as_a_whole_is_audited_once(
    demo_stack: DemoStack, portal: httpx.Client, raw: bytes, status: int
) -> None:
    correlation = str(uuid.uuid4())
    r = portal.post("/v1/bundles", content=raw, headers={
        **OK_HEADERS, "Content-Type": "application/json", "X-Bus-Correlation": correlation})
    assert r.status_code == status, r.text
    (entry,) = entries_of(demo_stack, correlation)
    assert (entry.service, entry.client, entry.user) == (  # type: ignore[attr-defined]
        "bus/bundle/v1", "portal", "officer-17")
