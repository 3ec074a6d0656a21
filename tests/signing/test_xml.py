"""XMLDSig on SOAP-shaped documents: round trips, tampering, signature wrapping, hostile XML."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from lxml import etree

from signing import (
    CertificateRevokedError,
    CertificateUntrustedError,
    SigningError,
    load_certificates,
    load_signing_key,
)
from signing.ca import write_certificates
from signing.xml import DS, SOAP11, SOAP12, WSSE, WSU, SoapSigner, SoapVerifier, parse_xml
from tests.signing.pki import KEY_PASSPHRASE, Pki, make_pki

CR = "urn:civil-registry:v1"
ANSWER = f"""<soap:Envelope xmlns:soap="{SOAP11}" xmlns:cr="{CR}">
  <soap:Header/>
  <soap:Body>
    <cr:GetBirthRecordResponse>
      <cr:Record>
        <cr:Number>I-TN 123456</cr:Number>
        <cr:Child>Aziz Karimov</cr:Child>
        <cr:Pinfl>31505861234567</cr:Pinfl>
      </cr:Record>
    </cr:GetBirthRecordResponse>
  </soap:Body>
</soap:Envelope>""".encode()
NS = {"soap": SOAP11, "cr": CR, "ds": DS, "wsse": WSSE, "wsu": WSU}
SIGNATURE = "soap:Header/wsse:Security/ds:Signature"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    pki = make_pki(tmp_path)
    pki.issue("civil-registry", "cadastre")
    return pki


def signer(pki: Pki, member: str = "civil-registry") -> SoapSigner:
    key = load_signing_key(pki.keys / f"{member}.key", KEY_PASSPHRASE)
    return SoapSigner(member, key, clock=pki.clock)


def verifier(pki: Pki) -> SoapVerifier:
    return SoapVerifier(pki.store("civil-registry", "cadastre"), clock=pki.clock)


def reason(pki: Pki, data: bytes) -> str:
    with pytest.raises(SigningError) as info:
        verifier(pki).verify(data)
    return info.value.reason


def tree(data: bytes) -> etree._Element:
    return parse_xml(data)


def text(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root))


# --- round trips ------------------------------------------------------------------------------


def test_signed_body_verifies_and_names_the_signer(pki: Pki) -> None:
    signed = signer(pki).sign(ANSWER)
    result = verifier(pki).verify(signed, signer="civil-registry")
    assert result.member == "civil-registry" and result.kid == signer(pki).kid
    assert result.body.findtext(".//cr:Child", namespaces=NS) == "Aziz Karimov"
    assert result.trusted.serial == pki.ca.find("civil-registry")[0].serial
    root = tree(signed)
    sig = root.find(SIGNATURE, NS)
    assert sig is not None
    assert sig.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm").endswith(  # type: ignore[union-attr]
        "ecdsa-sha256"
    )
    assert sig.find("ds:SignedInfo/ds:CanonicalizationMethod", NS).get("Algorithm") == (  # type: ignore[union-attr]
        "http://www.w3.org/2001/10/xml-exc-c14n#"
    )
    key_info = sig.find("ds:KeyInfo", NS)
    assert [c.tag for c in key_info] == [f"{{{DS}}}KeyName"]  # type: ignore[union-attr]


def test_soap12_and_an_envelope_without_header(pki: Pki) -> None:
    doc = f'<e:Envelope xmlns:e="{SOAP12}"><e:Body><x xmlns="urn:x">1</x></e:Body></e:Envelope>'
    signed = signer(pki).sign(doc.encode())
    assert tree(signed)[0].tag == f"{{{SOAP12}}}Header"
    assert verifier(pki).verify(signed).body.findtext("{urn:x}x") == "1"


def test_rsa_keys_sign_rsa_sha256(pki: Pki) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = pki.ca.issue("cadastre", key.public_key())
    write_certificates(pki.bundle("cadastre"), [certificate])
    signed = SoapSigner("cadastre", key).sign(ANSWER)
    assert b"rsa-sha256" in signed
    assert verifier(pki).verify(signed).member == "cadastre"


def test_ed25519_cannot_sign_xml() -> None:
    with pytest.raises(SigningError) as info:
        SoapSigner("portal", Ed25519PrivateKey.generate())
    assert info.value.reason == "unsupported-alg"


def test_comments_in_signed_text_are_not_what_is_returned(pki: Pki) -> None:
    signed = signer(pki).sign(ANSWER)
    sneaky = signed.replace(b"Aziz Karimov", b"Aziz<!-- -->Karimov")
    # exclusive C14N without comments: the digest still matches, and the returned body is the
    # canonical one, where the comment is gone and the text is whole (as signed)
    with pytest.raises(SigningError):
        verifier(pki).verify(sneaky)  # "AzizKarimov" != "Aziz Karimov": a changed text node
    joined = signed.replace(b"Aziz Karimov", b"Aziz <!-- x -->Karimov")
    body = verifier(pki).verify(joined).body
    assert body.findtext(".//cr:Child", namespaces=NS) == "Aziz Karimov"


# --- the signed timestamp (WS-Security) ------------------------------------------------------


def test_a_timestamp_is_signed_with_the_body_by_default(pki: Pki) -> None:
    signed = signer(pki).sign(ANSWER, expires_in=dt.timedelta(seconds=90))
    root = tree(signed)
    security = root.find("soap:Header/wsse:Security", NS)
    assert security is not None and security.get(f"{{{SOAP11}}}mustUnderstand") == "1"
    assert [etree.QName(c).localname for c in security] == ["Timestamp", "Signature"]
    assert security.findtext("wsu:Timestamp/wsu:Created", namespaces=NS) == (
        "2026-03-01T12:00:00.000000Z"
    )
    stamp = verifier(pki).verify(signed).timestamp
    assert stamp is not None
    now = pki.clock.now
    assert (stamp.created, stamp.expires) == (now, now + dt.timedelta(seconds=90))


def test_without_a_timestamp_only_the_body_is_signed_in_the_header(pki: Pki) -> None:
    signed = signer(pki).sign(ANSWER, expires_in=None)
    assert tree(signed).find("soap:Header/ds:Signature", NS) is not None
    result = verifier(pki).verify(signed)
    assert result.timestamp is None and result.digest


def test_a_changed_timestamp_is_refused(pki: Pki) -> None:
    signed = signer(pki).sign(ANSWER)
    later = signed.replace(b"2026-03-01T12:05:00.000000Z", b"2026-03-01T13:05:00.000000Z")
    assert later != signed and reason(pki, later) == "bad-signature"


def test_an_unsigned_timestamp_is_not_reported(pki: Pki) -> None:
    """A body-only signature placed in wsse:Security beside a Timestamp it does not cover."""
    root = tree(signer(pki).sign(ANSWER, expires_in=None))
    header = root.find("soap:Header", NS)
    signature = root.find("soap:Header/ds:Signature", NS)
    assert header is not None and signature is not None
    security = etree.SubElement(header, f"{{{WSSE}}}Security")
    stamp = etree.SubElement(security, f"{{{WSU}}}Timestamp")
    etree.SubElement(stamp, f"{{{WSU}}}Created").text = "2026-03-01T12:00:00Z"
    etree.SubElement(stamp, f"{{{WSU}}}Expires").text = "2099-01-01T00:00:00Z"
    security.append(signature)
    result = verifier(pki).verify(text(root))
    assert result.timestamp is None


def test_the_second_reference_must_be_the_timestamp_beside_the_signature(pki: Pki) -> None:
    root = tree(signer(pki).sign(ANSWER))
    stamp = root.find("soap:Header/wsse:Security/wsu:Timestamp", NS)
    header = root.find("soap:Header", NS)
    assert stamp is not None and header is not None
    header.append(stamp)  # moved out of wsse:Security: not where the signature is
    assert reason(pki, text(root)) == "wrapped"
    root = tree(signer(pki).sign(ANSWER))
    security = root.find("soap:Header/wsse:Security", NS)
    assert security is not None
    security.insert(0, copy.deepcopy(security[0]))  # two timestamps
    assert reason(pki, text(root)) == "wrapped"


BUS = "urn:bus:soap:v1"
WITH_CONTEXT = ANSWER.replace(
    b"<soap:Header/>",
    f'<soap:Header><bus:BusContext xmlns:bus="{BUS}"><bus:Purpose>pension</bus:Purpose>'
    "<bus:User>operator-7</bus:User></bus:BusContext></soap:Header>".encode(),
)


def context_of(root: etree._Element) -> etree._Element:
    found = root.find(f"soap:Header/{{{BUS}}}BusContext", NS)
    assert found is not None
    return found


@pytest.mark.parametrize("expires_in", [dt.timedelta(minutes=1), None])
def test_a_bus_context_is_signed_as_the_last_reference(
    pki: Pki, expires_in: dt.timedelta | None
) -> None:
    signed = signer(pki).sign(WITH_CONTEXT, expires_in=expires_in)
    root = tree(signed)
    context_id = context_of(root).get(f"{{{WSU}}}Id")
    uris = [r.get("URI") for r in root.iterfind(".//ds:SignedInfo/ds:Reference", NS)]
    assert context_id and uris[-1] == f"#{context_id}" and len(uris) == (3 if expires_in else 2)
    result = verifier(pki).verify(signed)
    stamped = ("Timestamp",) if expires_in else ()
    assert result.signed == ("Body", *stamped, "BusContext") and not result.unsigned_context
    assert result.context is not None
    assert result.context.findtext(f"{{{BUS}}}User") == "operator-7"
    assert result.digest != verifier(pki).verify(signer(pki).sign(ANSWER)).digest
    changed = signed.replace(b">pension<", b">tax-audit<")
    assert changed != signed and reason(pki, changed) == "bad-signature"


def test_an_unsigned_bus_context_is_reported_not_returned(pki: Pki) -> None:
    root = tree(signer(pki).sign(ANSWER))
    header = root.find("soap:Header", NS)
    assert header is not None
    header.insert(0, context_of(tree(WITH_CONTEXT)))  # added after signing
    result = verifier(pki).verify(text(root))
    assert result.signed == ("Body", "Timestamp")
    assert result.context is None and result.unsigned_context
    assert not verifier(pki).verify(signer(pki).sign(ANSWER)).unsigned_context


def test_two_bus_contexts_are_not_signed(pki: Pki) -> None:
    root = tree(WITH_CONTEXT)
    context = context_of(root)
    context.addnext(copy.deepcopy(context))
    with pytest.raises(SigningError) as info:
        signer(pki).sign(text(root))
    assert info.value.reason == "malformed"


def test_a_moved_or_duplicated_bus_context_is_wrapping(pki: Pki) -> None:
    signed = signer(pki).sign(WITH_CONTEXT)
    cases = []
    root = tree(signed)  # moved into wsse:Security
    security = root.find("soap:Header/wsse:Security", NS)
    assert security is not None
    security.insert(0, context_of(root))
    cases.append(root)
    root = tree(signed)  # the signed one kept, another one (no id) read first
    forged = copy.deepcopy(context_of(root))
    del forged.attrib[f"{{{WSU}}}Id"]
    forged[0].text = "tax-audit"
    context_of(root).addprevious(forged)
    cases.append(root)
    root = tree(signed)  # the signed one moved inside another header, a forged one in its place
    context = context_of(root)
    forged = copy.deepcopy(context)
    del forged.attrib[f"{{{WSU}}}Id"]
    context.addprevious(forged)
    etree.SubElement(root.find("soap:Header", NS), "{urn:x}Wrapper").append(context)  # type: ignore[arg-type]
    cases.append(root)
    root = tree(signed)  # a second copy in the Body
    body = root.find("soap:Body", NS)
    assert body is not None
    body[0].append(copy.deepcopy(context_of(root)))
    cases.append(root)
    for case in cases:
        assert reason(pki, text(case)) == "wrapped"


def test_the_digest_is_the_same_for_a_malleated_ecdsa_signature(pki: Pki) -> None:
    """(r, s) and (r, n - s) both verify: a replay check must not key on the signature bytes."""
    signed = signer(pki).sign(ANSWER)
    root = tree(signed)
    value = root.find(SIGNATURE + "/ds:SignatureValue", NS)
    assert value is not None and value.text
    raw = base64.b64decode(value.text)
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256 order
    value.text = base64.b64encode(r + (n - s).to_bytes(32, "big")).decode()
    other = text(root)
    assert other != signed
    assert verifier(pki).verify(other).digest == verifier(pki).verify(signed).digest
    assert verifier(pki).verify(signer(pki).sign(ANSWER)).digest != (
        verifier(pki).verify(signed).digest  # signed anew: another Body id and Timestamp
    )


# --- tampering --------------------------------------------------------------------------------


def test_a_changed_element_is_refused(pki: Pki) -> None:
    signed = signer(pki).sign(ANSWER)
    assert reason(pki, signed.replace(b"31505861234567", b"42203902740025")) == "bad-signature"


def test_an_added_element_in_the_body_is_refused(pki: Pki) -> None:
    signed = signer(pki).sign(ANSWER)
    added = signed.replace(b"</cr:Record>", b"<cr:Note>also this</cr:Note></cr:Record>")
    assert reason(pki, added) == "bad-signature"


def test_an_added_header_element_is_not_part_of_what_is_returned(pki: Pki) -> None:
    root = tree(signer(pki).sign(ANSWER))
    header = root.find("soap:Header", NS)
    etree.SubElement(header, f"{{{CR}}}Injected").text = "unsigned"  # type: ignore[arg-type]
    result = verifier(pki).verify(text(root))
    assert b"Injected" not in etree.tostring(result.body)
    assert result.body.tag == f"{{{SOAP11}}}Body"


def test_a_second_body_is_refused(pki: Pki) -> None:
    root = tree(signer(pki).sign(ANSWER))
    root.append(etree.Element(f"{{{SOAP11}}}Body"))
    assert reason(pki, text(root)) == "wrapped"


def test_signature_wrapping_with_a_fake_body(pki: Pki) -> None:
    """XSW: the signed Body is hidden in a Header wrapper; a forged Body takes its place."""
    root = tree(signer(pki).sign(ANSWER))
    body = root.find("soap:Body", NS)
    header = root.find("soap:Header", NS)
    assert body is not None and header is not None
    wrapper = etree.SubElement(header, f"{{{CR}}}Wrapper")
    root.remove(body)
    wrapper.append(body)
    fake = copy.deepcopy(body)
    fake.find(".//cr:Pinfl", NS).text = "42203902740025"  # type: ignore[union-attr]
    for name in list(fake.attrib):
        del fake.attrib[name]  # the fake Body without the id ...
    root.append(fake)
    assert reason(pki, text(root)) == "wrapped"
    fake.attrib.update(body.attrib)  # ... or with the same id (ambiguous)
    assert reason(pki, text(root)) == "wrapped"


def test_signature_elsewhere_or_twice_is_refused(pki: Pki) -> None:
    root = tree(signer(pki).sign(ANSWER))
    signature = root.find(SIGNATURE, NS)
    body = root.find("soap:Body", NS)
    assert signature is not None and body is not None
    body.append(copy.deepcopy(signature))
    assert reason(pki, text(root)) == "wrapped"  # two signatures
    signature.getparent().remove(signature)  # type: ignore[union-attr]
    assert reason(pki, text(root)) == "wrapped"  # one, in the Body


def test_keys_carried_in_the_message_are_refused(pki: Pki) -> None:
    root = tree(signer(pki).sign(ANSWER))
    key_info = root.find(SIGNATURE + "/ds:KeyInfo", NS)
    etree.SubElement(etree.SubElement(key_info, f"{{{DS}}}X509Data"), f"{{{DS}}}X509Certificate")  # type: ignore[arg-type]
    assert reason(pki, text(root)) == "malformed"


def test_a_reference_to_another_element_is_refused(pki: Pki) -> None:
    signed = signer(pki).sign(ANSWER)
    body_id = tree(signed).find("soap:Body", NS).attrib.values()[0]  # type: ignore[union-attr]
    moved = signed.replace(f'URI="#{body_id}"'.encode(), b'URI="#elsewhere"')
    assert reason(pki, moved) == "wrapped"


# --- trust ------------------------------------------------------------------------------------


def test_the_same_trust_store_decides(pki: Pki, tmp_path: Path) -> None:
    signed = signer(pki).sign(ANSWER)
    with pytest.raises(SigningError) as wrong:
        verifier(pki).verify(signed, signer="cadastre")
    assert wrong.value.reason == "wrong-signer"
    pki.ca.revoke(pki.ca.find("civil-registry")[0].serial_number)
    pki.ticker.t += 10
    store = pki.store("civil-registry")
    with pytest.raises(CertificateRevokedError):
        SoapVerifier(store, clock=pki.clock).verify(signed)
    other = make_pki(tmp_path / "rogue")
    other.issue("cadastre")
    rogue = signer(other, "cadastre").sign(ANSWER)
    assert reason(pki, rogue) == "unknown-key"
    write_certificates(pki.bundle("cadastre"), load_certificates(other.bundle("cadastre")))
    with pytest.raises(CertificateUntrustedError) as info:
        SoapVerifier(pki.store("cadastre"), clock=pki.clock).verify(rogue)
    assert info.value.reason == "unknown-issuer"


# --- hostile XML ------------------------------------------------------------------------------

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<lolz>&lol3;</lolz>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://evil.example/x.dtd"><x/>"""


@pytest.mark.parametrize("data", [LAUGHS, XXE, EXTERNAL_DTD], ids=["laughs", "xxe", "dtd"])
def test_dtds_and_entities_are_refused(pki: Pki, data: bytes) -> None:
    with pytest.raises(SigningError) as info:
        parse_xml(data)
    assert info.value.reason == "malformed"
    assert reason(pki, data) == "malformed"
    with pytest.raises(SigningError):
        signer(pki).sign(data)


def test_size_and_depth_limits(pki: Pki) -> None:
    with pytest.raises(SigningError, match="larger than"):
        parse_xml(b"<x>" + b"a" * 2_000_000 + b"</x>")
    deep = b"<a>" * 10_000 + b"</a>" * 10_000
    with pytest.raises(SigningError):
        parse_xml(deep)
    assert reason(pki, b"not xml at all") == "malformed"
    assert reason(pki, b"<x/>") == "malformed"  # not a SOAP envelope
