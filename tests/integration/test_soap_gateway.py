"""The SOAP gateway: a stock zeep client pointed at a service's generated WSDL, unchanged.

The demo stack on its CA (members with P-256 certificates, so XMLDSig works), loopback only.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import requests
import zeep
import zeep.exceptions
from lxml import etree

from bus.records.audit import verify
from demo.archive import ARCHIVE, wait_for_task
from demo.data import (
    AZIZ,
    BIRTHS,
    DILNOZA,
    UNKNOWN_PINFL,
    archival_birth,
    birth_certificate,
    expected_birth_certificate,
)
from demo.scenario import (
    CIVIL,
    DEMO_KEY_PASSPHRASE,
    PROPERTY,
    DemoStack,
    start_stack,
    verify_answer,
)
from signing import load_signing_key
from signing.xml import SOAP11, SoapSigner

pytestmark = pytest.mark.slow
BUS = "urn:bus:soap:v1"
PURPOSE = "child-benefit"
CONTEXT = {"BusContext": {"Purpose": "child-benefit", "User": "registry-clerk-4"}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    stack = start_stack(tmp_path_factory.mktemp("soap-gw"), pki=True)
    try:
        yield stack
    finally:
        stack.stop()


def wsdl_url(stack: DemoStack, service: str = CIVIL) -> str:
    return f"{stack.gateway.url}/soap/{service}?wsdl"


def client(stack: DemoStack, service: str = CIVIL, token: str | None = None) -> zeep.Client:
    """What an agency's developer writes: zeep, the WSDL URL, the token in a session header."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token or stack.token}"
    return zeep.Client(wsdl_url(stack, service), transport=zeep.Transport(session=session))


def fault_of(call: Any) -> zeep.exceptions.Fault:
    with pytest.raises(zeep.exceptions.Fault) as info:
        call()
    return info.value


def test_the_wsdl_is_published_at_a_stable_url_with_its_operations(stack: DemoStack) -> None:
    r = httpx.get(wsdl_url(stack))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    assert httpx.get(wsdl_url(stack)).content == r.content  # stable
    operations = client(stack).wsdl.bindings
    names = [op for binding in operations.values() for op in binding._operations]
    assert names == ["GetBirthCertificate", "GetResult"]
    assert b'soap:address location="' + f"{stack.gateway.url}/soap/{CIVIL}".encode() in r.content


def timed_exchanges(stack: DemoStack, service: str) -> float:
    """How many exchanges of ``service`` the gateway's latency histogram holds."""
    metrics = httpx.get(f"{stack.gateway.url}/metrics").text
    found = re.search(rf'bus_exchange_duration_seconds_count{{service="{service}"}} (\S+)',
                      metrics)
    return float(found.group(1)) if found else 0.0


def test_a_stock_zeep_client_gets_a_birth_certificate(stack: DemoStack) -> None:
    birth = BIRTHS[1]
    timed = timed_exchanges(stack, CIVIL)
    answer = client(stack).service.GetBirthCertificate(pinfl=birth.pinfl, _soapheaders=CONTEXT)
    assert timed_exchanges(stack, CIVIL) == timed + 1  # on the dashboard like a JSON exchange
    expected = expected_birth_certificate(birth.pinfl)
    assert expected is not None
    certificate = answer.BirthCertificate
    assert certificate.number == expected.number
    assert certificate.child.born_on == dt.date(2018, 3, 12)  # typed by the WSDL
    assert [p.role for p in certificate.parents] == ["father", "mother"]
    assert certificate.registry_office is None  # minimised: not in the portal's right
    signed = __import__("json").loads(answer.SignedAnswer)
    assert verify_answer(signed, stack.trust_for("civil-registry"), "civil-registry")
    assert signed["payload"]["number"] == birth.certificate
    view = httpx.get(f"{stack.gateway.url}/verify/{answer.RequestNumber}",
                     headers={"Accept": "application/json"}).json()
    assert view["signature"]["valid"] and view["service"] == CIVIL


def test_by_number_and_another_service_with_decimals(stack: DemoStack) -> None:
    by_number = client(stack).service.GetBirthCertificate(
        number=BIRTHS[2].certificate, _soapheaders=CONTEXT
    )
    assert by_number.BirthCertificate.child.pinfl == BIRTHS[2].pinfl
    owned = client(stack, PROPERTY).service.GetPropertyOwnership(
        pinfl=AZIZ.pinfl,
        _soapheaders={"BusContext": {"Purpose": "housing-subsidy", "User": "clerk"}},
    )
    flat = owned.PropertyOwnership.properties[0]
    assert flat.area_m2 == Decimal("74.50") and flat.share == "1/2"


@pytest.mark.parametrize(
    ("kwargs", "headers", "code"),
    [
        ({"pinfl": UNKNOWN_PINFL}, CONTEXT, "soap:Server.no-data"),
        ({"pinfl": AZIZ.pinfl, "number": BIRTHS[0].certificate}, CONTEXT,
         "soap:Client.schema-invalid"),
        ({"pinfl": "123"}, CONTEXT, "soap:Client.schema-invalid"),
        ({"pinfl": AZIZ.pinfl}, {"BusContext": {"Purpose": "marketing", "User": "x"}},
         "soap:Client.access-denied"),
        ({"pinfl": AZIZ.pinfl}, None, "soap:Client.malformed-request"),
    ],
)
def test_refusals_are_soap_faults_with_the_bus_code(
    stack: DemoStack, kwargs: dict[str, str], headers: Any, code: str
) -> None:
    service = client(stack).service
    fault = fault_of(lambda: service.GetBirthCertificate(**kwargs, _soapheaders=headers))
    assert fault.code == code
    detail = fault.detail
    assert detail is not None
    bus_code = detail.findtext("{urn:bus:soap:v1}Error/{urn:bus:soap:v1}Code")
    assert bus_code == code.rsplit(".", 1)[1]


def test_an_unknown_token_is_refused(stack: DemoStack) -> None:
    service = client(stack, token="not-a-token").service
    fault = fault_of(lambda: service.GetBirthCertificate(pinfl=AZIZ.pinfl, _soapheaders=CONTEXT))
    assert fault.code == "soap:Client.unauthenticated"


def _raw_request(pinfl: str, purpose: str | None = None, correlation: str | None = None) -> bytes:
    """A request; with ``purpose``, a BusContext header (signed requests need one)."""
    ns = "urn:bus:service:" + CIVIL.replace("/", ":")
    envelope = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"soap": SOAP11})
    if purpose is not None:
        header = etree.SubElement(envelope, f"{{{SOAP11}}}Header")
        context = etree.SubElement(header, f"{{{BUS}}}BusContext", nsmap={"bus": BUS})
        etree.SubElement(context, f"{{{BUS}}}Purpose").text = purpose
        etree.SubElement(context, f"{{{BUS}}}User").text = "registry-clerk-4"
        if correlation is not None:
            etree.SubElement(context, f"{{{BUS}}}Correlation").text = correlation
    body = etree.SubElement(envelope, f"{{{SOAP11}}}Body")
    op = etree.SubElement(body, f"{{{ns}}}GetBirthCertificate", nsmap={None: ns})
    etree.SubElement(op, f"{{{ns}}}pinfl").text = pinfl
    return bytes(etree.tostring(envelope))


def _post(stack: DemoStack, data: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{stack.gateway.url}/soap/{CIVIL}",
        content=data,
        headers={"Authorization": f"Bearer {stack.token}", "Content-Type": "text/xml",
                 "X-Bus-Purpose": "child-benefit", "X-Bus-User": "clerk", **headers},
    )


def test_purpose_and_user_may_come_as_http_headers(stack: DemoStack) -> None:
    r = _post(stack, _raw_request(BIRTHS[3].pinfl))
    assert r.status_code == 200, r.text
    assert r.headers["X-Bus-Request-Number"].startswith("BUS-")


@pytest.mark.parametrize(
    "data",
    [b"not xml", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
     b"<Envelope/>", b"x" * 300_000],
)
def test_hostile_or_broken_xml_is_a_client_fault(stack: DemoStack, data: bytes) -> None:
    r = _post(stack, data)
    assert r.status_code in (413, 500)
    if r.status_code == 500:
        assert b"soap:Client.malformed-request" in r.content


def _key(stack: DemoStack, member: str) -> Any:
    return load_signing_key(stack.state / "keys" / f"{member}.key", DEMO_KEY_PASSPHRASE.encode())


ASKED = _raw_request(BIRTHS[1].pinfl, PURPOSE)


def test_an_xmldsig_signed_request_from_the_token_holder_is_accepted(stack: DemoStack) -> None:
    signed = SoapSigner("portal", _key(stack, "portal")).sign(ASKED)
    r = _post(stack, signed)
    assert r.status_code == 200, r.text


def test_a_request_signed_by_another_member_or_tampered_is_refused(stack: DemoStack) -> None:
    other = SoapSigner("cadastre", _key(stack, "cadastre")).sign(ASKED)
    r = _post(stack, other)
    assert r.status_code == 500 and b"soap:Client.signature-invalid" in r.content
    signed = SoapSigner("portal", _key(stack, "portal")).sign(ASKED)
    tampered = signed.replace(BIRTHS[1].pinfl.encode(), BIRTHS[2].pinfl.encode())
    r = _post(stack, tampered)
    assert r.status_code == 500 and b"soap:Client.signature-invalid" in r.content


def _code(r: httpx.Response) -> str | None:
    return etree.fromstring(r.content).findtext(".//{urn:bus:soap:v1}Code")


def test_a_replayed_signed_request_is_refused_and_a_fresh_one_works(stack: DemoStack) -> None:
    signer = SoapSigner("portal", _key(stack, "portal"))
    signed = signer.sign(_raw_request(BIRTHS[2].pinfl, PURPOSE))
    first = _post(stack, signed)
    assert first.status_code == 200, first.text
    again = _post(stack, signed)
    assert again.status_code == 500 and _code(again) == "replayed"
    assert b"soap:Client.replayed" in again.content
    again_asked = _raw_request(BIRTHS[2].pinfl, PURPOSE)  # the same question
    fresh = _post(stack, signer.sign(again_asked))
    assert fresh.status_code == 200, fresh.text
    assert fresh.headers["X-Bus-Request-Number"] != first.headers["X-Bus-Request-Number"]


def test_a_stale_or_unstamped_signed_request_is_refused(stack: DemoStack) -> None:
    key = _key(stack, "portal")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    stale = SoapSigner("portal", key, clock=lambda: past).sign(ASKED)
    r = _post(stack, stale)
    assert r.status_code == 500 and _code(r) == "expired"
    future = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    ahead = SoapSigner("portal", key, clock=lambda: future).sign(ASKED)
    r = _post(stack, ahead)
    assert r.status_code == 500 and _code(r) == "expired"
    bare = SoapSigner("portal", key).sign(ASKED, expires_in=None)
    r = _post(stack, bare)
    assert r.status_code == 500 and _code(r) == "signature-invalid"
    assert b"wsu:Timestamp" in r.content


def test_a_signed_request_takes_its_context_from_the_signed_bus_context(
    stack: DemoStack,
) -> None:
    """Purpose and user of a signed request come from its signed BusContext: the HTTP headers
    are ignored (here one that access control would refuse)."""
    correlation = str(uuid.uuid4())
    signed = SoapSigner("portal", _key(stack, "portal")).sign(
        _raw_request(BIRTHS[3].pinfl, PURPOSE, correlation)
    )
    r = _post(stack, signed, **{"X-Bus-Purpose": "marketing", "X-Bus-User": "someone-else"})
    assert r.status_code == 200, r.text
    entries = [e for e in _gateway_entries(stack, correlation) if e["side"] == "provider"]
    assert entries and {(e["purpose"], e["user"]) for e in entries} == {
        (PURPOSE, "registry-clerk-4")
    }


def test_a_signed_request_with_a_changed_or_unsigned_context_is_refused(
    stack: DemoStack,
) -> None:
    signer = SoapSigner("portal", _key(stack, "portal"))
    tampered = signer.sign(ASKED).replace(PURPOSE.encode(), b"tax-audit")
    r = _post(stack, tampered)
    assert r.status_code == 500 and _code(r) == "signature-invalid"
    assert b"soap:Client.signature-invalid" in r.content
    # signed without a BusContext: one added on the way, or none (HTTP headers only)
    root = etree.fromstring(signer.sign(_raw_request(BIRTHS[1].pinfl)))
    header = root.find(f"{{{SOAP11}}}Header")
    context = etree.fromstring(ASKED).find(f"{{{SOAP11}}}Header/{{{BUS}}}BusContext")
    assert header is not None and context is not None
    header.insert(0, context)
    for request in (etree.tostring(root), signer.sign(_raw_request(BIRTHS[1].pinfl))):
        r = _post(stack, request)
        assert r.status_code == 500 and _code(r) == "signature-invalid"
        assert b"BusContext" in r.content


def _gateway_entries(stack: DemoStack, correlation: str) -> list[dict[str, object]]:
    return [e.hashed_fields() for e in stack.node.audit.store.entries()
            if e.correlation == correlation]


def test_refusals_are_audited_before_the_fault_without_personal_data(
    stack: DemoStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bus")
    pinfl = BIRTHS[0].pinfl
    # access denied, asked by zeep: context and subject known
    c1 = str(uuid.uuid4())
    marketing = {"BusContext": {"Purpose": "marketing", "User": "clerk-9", "Correlation": c1}}
    service = client(stack).service
    fault = fault_of(lambda: service.GetBirthCertificate(pinfl=pinfl, _soapheaders=marketing))
    assert fault.code == "soap:Client.access-denied"
    (entry,) = _gateway_entries(stack, c1)  # written before the Fault came back
    assert (entry["side"], entry["outcome"]) == ("gateway", "access-denied")
    assert entry["service"] == CIVIL
    assert (entry["client"], entry["provider"]) == ("portal", "civil-registry")
    assert (entry["purpose"], entry["user"]) == ("marketing", "clerk-9")
    assert entry["subject"] == stack.node.audit.subject_key(pinfl)
    assert entry["response_digest"] is None and pinfl not in str(entry)
    # an unknown token, a signature of another member, a replay, a schema error
    refused = {
        "unauthenticated": lambda c: _post(stack, _raw_request(pinfl), **{
            "Authorization": "Bearer not-a-token", "X-Bus-Correlation": c}),
        "signature-invalid": lambda c: _post(stack, SoapSigner(
            "cadastre", _key(stack, "cadastre")).sign(_raw_request(pinfl, PURPOSE)), **{
            "X-Bus-Correlation": c}),
        "schema-invalid": lambda c: _post(stack, _raw_request("123"), **{
            "X-Bus-Correlation": c}),
    }
    for code, ask in refused.items():
        correlation = str(uuid.uuid4())
        r = ask(correlation)
        assert r.status_code == 500 and _code(r) == code
        if code == "unauthenticated":  # before authentication: per source and minute
            assert _gateway_entries(stack, correlation) == []  # bus.gateway.throttle
            assert any((e.user, e.outcome, e.service, e.client) ==
                       ("source:127.0.0.1", code, CIVIL, "-")
                       for e in stack.node.audit.store.entries())
            continue
        (entry,) = _gateway_entries(stack, correlation)
        assert (entry["outcome"], entry["service"], entry["side"]) == (code, CIVIL, "gateway")
        assert entry["client"] == "portal"
        assert entry["subject"] is None  # not read: the request was refused before
    signed = SoapSigner("portal", _key(stack, "portal")).sign(_raw_request(pinfl, PURPOSE))
    c2 = str(uuid.uuid4())
    assert _post(stack, signed, **{"X-Bus-Correlation": c2}).status_code == 200
    c3 = str(uuid.uuid4())
    replayed = _post(stack, signed, **{"X-Bus-Correlation": c3})
    assert _code(replayed) == "replayed"
    (entry,) = _gateway_entries(stack, c3)
    assert (entry["outcome"], entry["client"]) == ("replayed", "portal")
    # the chain holds, and nothing the bus logged names the person
    count, _, broken = verify(stack.node.audit.store.entries())
    assert broken is None and count >= 6
    logged = "\n".join(str(record.__dict__) for record in caplog.records)
    assert "exchange" in logged and pinfl not in logged


def test_a_provider_error_is_audited_once_by_the_provider(stack: DemoStack) -> None:
    correlation = str(uuid.uuid4())
    context = {"BusContext": {**CONTEXT["BusContext"], "Correlation": correlation}}
    service = client(stack).service
    fault = fault_of(lambda: service.GetBirthCertificate(pinfl=UNKNOWN_PINFL,
                                                         _soapheaders=context))
    assert fault.code == "soap:Server.no-data"
    (entry,) = _gateway_entries(stack, correlation)
    assert (entry["side"], entry["outcome"]) == ("provider", "no-data")


def test_an_unknown_service_has_no_wsdl(stack: DemoStack) -> None:
    r = httpx.get(f"{stack.gateway.url}/soap/nobody/nothing/v1?wsdl")
    assert r.status_code == 500 and b"soap:Client.unknown-service" in r.content


def test_the_wsdl_of_a_schema_with_named_enumerations_loads_in_zeep(tmp_path: Any) -> None:
    """A shared schema may use a Python Enum (a named JSON Schema definition)."""
    import enum

    from bus.config.routes import Route
    from bus.gateway.soap.endpoint import service_wsdl
    from schemas import SharedRequest, SharedResponse

    class Colour(enum.Enum):
        red = "red"
        green = "green"

    class Ask(SharedRequest):
        pinfl: str
        colour: Colour | None = None

    class Answer(SharedResponse):
        colour: Colour
        tones: list[Colour] = []

    route = Route("m/s/v1", "m", "svc.m.s.v1", Ask, Answer, 5, None)  # type: ignore[arg-type]
    path = tmp_path / "s.wsdl"
    path.write_bytes(service_wsdl(route, "http://127.0.0.1:9/soap/m/s/v1"))
    operation = zeep.Client(str(path)).service._binding._operations["GetAnswer"]
    assert operation.input.body.type.elements[1][0] == "colour"


def test_async_mode_answers_at_once_and_get_result_gives_the_answer(stack: DemoStack) -> None:
    service = client(stack).service
    context = {"BusContext": {**CONTEXT["BusContext"], "Mode": "async"}}
    accepted = service.GetBirthCertificate(pinfl=BIRTHS[2].pinfl, _soapheaders=context)
    assert accepted.State == "pending" and accepted.BirthCertificate is None
    for _ in range(200):
        result = service.GetResult(MessageId=accepted.MessageId)
        if result.State != "pending":
            break
        __import__("time").sleep(0.05)
    assert result.State == "done" and result.MessageId == accepted.MessageId
    assert result.BirthCertificate.number == BIRTHS[2].certificate
    assert result.RequestNumber.startswith("BUS-")
    signed = __import__("json").loads(result.SignedAnswer)
    assert verify_answer(signed, stack.trust_for("civil-registry"), "civil-registry")
    # the same result on the HTTP side, for the same client
    polled = httpx.get(f"{stack.gateway.url}/v1/messages/{accepted.MessageId}",
                       headers={"Authorization": f"Bearer {stack.token}"})
    assert polled.status_code == 200 and polled.content == result.SignedAnswer.encode()


def test_async_errors_come_back_as_faults_from_get_result(stack: DemoStack) -> None:
    service = client(stack).service
    context = {"BusContext": {**CONTEXT["BusContext"], "Mode": "async"}}
    accepted = service.GetBirthCertificate(pinfl=UNKNOWN_PINFL, _soapheaders=context)
    code = None
    for _ in range(200):
        try:
            assert service.GetResult(MessageId=accepted.MessageId).State == "pending"
        except zeep.exceptions.Fault as fault:
            code = fault.code
            break
        __import__("time").sleep(0.05)
    assert code == "soap:Server.no-data"
    unknown = fault_of(lambda: service.GetResult(MessageId="nope"))
    assert unknown.code == "soap:Client.unknown-document"


def test_a_soap_client_asks_the_archive_and_an_archivist_answers(stack: DemoStack) -> None:
    """A manual service over SOAP: refused synchronously, then async, answered from the inbox."""
    service = client(stack, ARCHIVE).service
    context = {"BusContext": {"Purpose": "pension-assignment", "User": "pension-clerk-2"}}
    refused = fault_of(lambda: service.GetBirthCertificate(pinfl=DILNOZA.pinfl,
                                                           _soapheaders=context))
    assert refused.code == "soap:Client.async-required"
    context["BusContext"]["Mode"] = "async"
    accepted = service.GetBirthCertificate(pinfl=DILNOZA.pinfl, _soapheaders=context)
    assert accepted.State == "pending"
    desk = stack.node.inbox
    assert desk is not None
    wait_for_task(desk, accepted.MessageId)
    record = archival_birth(DILNOZA.pinfl)
    assert record is not None
    desk.answer(accepted.MessageId, birth_certificate(record).model_dump(mode="json"),
                operator="archivist-1")
    for _ in range(200):
        result = service.GetResult(MessageId=accepted.MessageId)
        if result.State != "pending":
            break
        __import__("time").sleep(0.05)
    assert result.State == "done" and result.BirthCertificate.number == record.certificate
    signed = __import__("json").loads(result.SignedAnswer)
    assert verify_answer(signed, stack.trust_for("state-archive"), "state-archive")
