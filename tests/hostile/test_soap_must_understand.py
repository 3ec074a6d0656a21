"""SOAP header blocks the bus does not process but the sender made binding
(``mustUnderstand="1"``) are answered with a ``soap:MustUnderstand`` Fault before anything is
done — no agency asked, no document issued, the refusal audited; the headers the bus does
process (its BusContext, WS-Security on signed requests) still work with the flag set."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from lxml import etree

from bus.records.audit import open_audit_store
from demo.data import BIRTHS
from demo.scenario import CIVIL, DEMO_KEY_PASSPHRASE, DemoStack, start_stack
from signing import load_signing_key
from signing.xml import SOAP11, SoapSigner

pytestmark = pytest.mark.slow
BUS = "urn:bus:soap:v1"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS = "urn:bus:service:" + CIVIL.replace("/", ":")
PERSON = BIRTHS[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    stack = start_stack(tmp_path_factory.mktemp("soap-mu"), pki=True)
    try:
        yield stack
    finally:
        stack.stop()


def _request(extra: list[etree._Element] | None = None, *, context_flag: str | None = None,
             envelope_ns: str = SOAP11) -> bytes:
    envelope = etree.Element(f"{{{envelope_ns}}}Envelope", nsmap={"soap": envelope_ns})
    header = etree.SubElement(envelope, f"{{{envelope_ns}}}Header")
    context = etree.SubElement(header, f"{{{BUS}}}BusContext", nsmap={"bus": BUS})
    if context_flag is not None:
        context.set(f"{{{envelope_ns}}}mustUnderstand", context_flag)
    etree.SubElement(context, f"{{{BUS}}}Purpose").text = "child-benefit"
    etree.SubElement(context, f"{{{BUS}}}User").text = "registry-clerk-4"
    for block in extra or []:
        header.append(block)
    body = etree.SubElement(envelope, f"{{{envelope_ns}}}Body")
    op = etree.SubElement(body, f"{{{NS}}}GetBirthCertificate", nsmap={None: NS})
    etree.SubElement(op, f"{{{NS}}}pinfl").text = PERSON.pinfl
    return bytes(etree.tostring(envelope))


def _block(tag: str, must: str | None = "1", actor: str | None = None,
           envelope_ns: str = SOAP11) -> etree._Element:
    block = etree.Element(tag)
    block.text = "x"
    if must is not None:
        block.set(f"{{{envelope_ns}}}mustUnderstand", must)
    if actor is not None:
        block.set(f"{{{envelope_ns}}}actor", actor)
    return block


def _post(stack: DemoStack, data: bytes) -> httpx.Response:
    return httpx.post(
        f"{stack.gateway.url}/soap/{CIVIL}", content=data, timeout=15,
        headers={"Authorization": f"Bearer {stack.token}", "Content-Type": "text/xml"},
    )


def _counts(stack: DemoStack) -> tuple[int, int]:
    """(lookups the civil registry served, audit entries)."""
    assert stack.civil is not None
    url = stack.node.settings.audit.url
    assert url is not None
    store = open_audit_store(url.get_secret_value())
    try:
        entries = len(list(store.entries()))
    finally:
        store.close()
    return stack.civil.server.config.app.state.lookups, entries


def _last_outcome(stack: DemoStack) -> str:
    url = stack.node.settings.audit.url
    assert url is not None
    store = open_audit_store(url.get_secret_value())
    try:
        return list(store.entries())[-1].outcome
    finally:
        store.close()


UNKNOWN = [
    "{urn:example:tx}Transaction",
    "{http://www.w3.org/2005/08/addressing}Action",  # WS-Addressing: not processed here
    "{urn:bus:soap:v2}BusContext",  # the bus's header name in another namespace
    "{http://schemas.xmlsoap.org/ws/2002/07/secext}Security",  # an older WS-Security
    "NoNamespace",
]


@pytest.mark.parametrize("tag", UNKNOWN)
@pytest.mark.parametrize("flag", ["1", "true", " 1 "])
def test_an_unknown_binding_header_is_a_must_understand_fault_and_nothing_is_done(
    stack: DemoStack, tag: str, flag: str
) -> None:
    before = _counts(stack)
    r = _post(stack, _request([_block(tag, flag)]))
    assert r.status_code == 500
    fault = etree.fromstring(r.content).find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == "soap:MustUnderstand"
    local = tag.rsplit("}", 1)[-1]
    assert local in (fault.findtext("faultstring") or "")
    assert fault.findtext(f"detail/{{{BUS}}}Error/{{{BUS}}}Code") == "must-understand"
    assert "X-Bus-Request-Number" not in r.headers  # no document issued
    lookups, entries = _counts(stack)
    assert lookups == before[0]  # the agency was not asked
    assert entries == before[1] + 1 and _last_outcome(stack) == "must-understand"


@pytest.mark.parametrize(
    "block",
    [
        _block("{urn:example:tx}Transaction", must=None),
        _block("{urn:example:tx}Transaction", must="0"),
        _block("{urn:example:tx}Transaction", must="false"),
        _block("{urn:example:tx}Transaction", actor="http://intermediary.example.gov/"),
    ],
    ids=["no-flag", "flag-0", "flag-false", "for-another-actor"],
)
def test_an_unknown_header_that_is_not_binding_here_is_ignored(
    stack: DemoStack, block: etree._Element
) -> None:
    r = _post(stack, _request([block]))
    assert r.status_code == 200, r.text
    assert r.headers["X-Bus-Request-Number"].startswith("BUS-")


def test_the_bus_context_marked_must_understand_is_understood(stack: DemoStack) -> None:
    r = _post(stack, _request(context_flag="1"))
    assert r.status_code == 200, r.text


def test_an_explicit_next_actor_is_this_node(stack: DemoStack) -> None:
    block = _block("{urn:example:tx}Transaction",
                   actor="http://schemas.xmlsoap.org/soap/actor/next")
    r = _post(stack, _request([block]))
    assert r.status_code == 500 and b"soap:MustUnderstand" in r.content


def _signer(stack: DemoStack) -> SoapSigner:
    key = load_signing_key(stack.state / "keys" / "portal.key", DEMO_KEY_PASSPHRASE.encode())
    return SoapSigner("portal", key)


def test_a_signed_request_with_its_binding_ws_security_header_works(stack: DemoStack) -> None:
    signed = _signer(stack).sign(_request())
    assert b'mustUnderstand="1"' in signed  # wsse:Security is marked binding
    r = _post(stack, signed)
    assert r.status_code == 200, r.text


def test_a_binding_header_slipped_into_a_signed_request_is_refused(stack: DemoStack) -> None:
    signed = etree.fromstring(_signer(stack).sign(_request()))
    header = signed.find(f"{{{SOAP11}}}Header")
    assert header is not None
    header.append(_block("{urn:example:tx}Transaction"))
    before = _counts(stack)
    r = _post(stack, etree.tostring(signed))
    assert r.status_code == 500 and b"soap:MustUnderstand" in r.content
    assert _counts(stack)[0] == before[0]


def test_a_soap12_envelope_is_not_served_whatever_its_headers(stack: DemoStack) -> None:
    data = _request([_block("{urn:example:tx}Transaction", envelope_ns=SOAP12)],
                    envelope_ns=SOAP12)
    r = _post(stack, data)
    assert r.status_code == 500 and b"soap:Client.malformed-request" in r.content


@pytest.mark.parametrize("host", ["evil.example.org", "127.0.0.1:1"])
def test_a_forged_host_does_not_move_the_wsdl_address(stack: DemoStack, host: str) -> None:
    """A WSDL whose soap:address followed Host would send the next client's token elsewhere."""
    r = httpx.get(f"{stack.gateway.url}/soap/{CIVIL}?wsdl", headers={"Host": host}, timeout=10)
    assert r.status_code == 200
    address = etree.fromstring(r.content).find(
        ".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address is not None
    assert address.get("location") == f"{stack.node.settings.documents.public_url}/soap/{CIVIL}"
    assert host not in r.text
