"""XML signatures (XMLDSig) for SOAP parties, and XML parsed as hostile until proven otherwise.

``parse_xml`` is the one way XML is read: a size limit before parsing, then a hardened lxml
parser (``xml_parser``: no entity resolution, no network, no DTD loading, no huge trees), and a
document with a DOCTYPE is refused outright.

``SoapSigner`` signs the ``Body`` of a SOAP 1.1/1.2 envelope with ``signxml``: an enveloped
signature in the ``Header``, exclusive C14N, SHA-256 digest, ``ecdsa-sha256`` (P-256 keys, what
the bus CA certifies) or ``rsa-sha256`` (RSA keys of 2048 bits or more). The key is a
``cryptography`` object loaded once (signxml given PEM bytes re-parses the key on every call).
``KeyInfo`` holds only a ``KeyName``: the key id, as in JWS (``<member>#<fingerprint>``).

``SoapVerifier`` checks a signed envelope against the same trust store as the JSON envelopes:
the key id is resolved (certificate chained to the bus CA, not revoked, valid now) and the
signature is verified with that certificate, never with a key or certificate carried in the
message. Against signature wrapping, it requires: exactly one ``Envelope/Header`` and one
``Envelope/Body``; exactly one ``ds:Signature``, in the Header; one reference, to the Body's id,
which no other element carries; and it returns only what was signed (``signxml``'s
``signed_xml``, re-parsed from the canonical bytes), never the received tree. Callers must
consume ``VerifiedSoap.body`` and nothing else of the message.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
)
from signxml.exceptions import InvalidDigest, InvalidSignature, SignXMLException

from signing.errors import SigningError
from signing.keys import PrivateKey, key_id
from signing.truststore import TrustedKey, TrustStore

__all__ = [
    "MAX_XML_BYTES",
    "SOAP11",
    "SOAP12",
    "SoapSigner",
    "SoapVerifier",
    "VerifiedSoap",
    "parse_xml",
    "xml_parser",
]

MAX_XML_BYTES = 1_048_576
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
_ID = f"{{{WSU}}}Id"
_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
_CARRIERS = "//*[@*[local-name() = 'Id' or local-name() = 'ID'] = $id]"
_METHODS = frozenset({SignatureMethod.ECDSA_SHA256, SignatureMethod.RSA_SHA256})


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def xml_parser() -> etree.XMLParser:
    """A new hardened parser (parsers are not shared between threads)."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )


def parse_xml(data: bytes, *, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """Parse untrusted XML: size first, then the hardened parser; no DOCTYPE, no entities."""
    if not isinstance(data, bytes):
        raise SigningError("malformed", "XML must be given as bytes")
    if len(data) > max_bytes:
        raise SigningError("malformed", f"XML larger than {max_bytes} bytes")
    try:
        root = etree.fromstring(data, parser=xml_parser())
    except etree.XMLSyntaxError as exc:
        raise SigningError("malformed", f"not well-formed XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise SigningError("malformed", "XML with a DOCTYPE is refused")
    if any(True for _ in root.iter(etree.Entity)):
        raise SigningError("malformed", "XML with entity references is refused")
    return root


def _soap_parts(root: etree._Element) -> tuple[str, etree._Element | None, etree._Element]:
    """(SOAP namespace, Header or None, Body) of an envelope, each at most once."""
    ns = etree.QName(root).namespace
    if etree.QName(root).localname != "Envelope" or ns not in (SOAP11, SOAP12):
        raise SigningError("malformed", "not a SOAP envelope")
    headers = root.findall(f"{{{ns}}}Header")
    bodies = root.findall(f"{{{ns}}}Body")
    if len(bodies) != 1 or len(headers) > 1:
        raise SigningError("wrapped", "a SOAP envelope has one Body and at most one Header")
    return ns, (headers[0] if headers else None), bodies[0]


def _xml_key(key: PrivateKey) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    raise SigningError("unsupported-alg", "XMLDSig needs an ECDSA P-256 or RSA key (no Ed25519)")


class SoapSigner:
    """Signs SOAP envelopes' Body as one member, with a key object loaded once."""

    def __init__(self, member: str, private_key: PrivateKey) -> None:
        self.member = member
        self._key = _xml_key(private_key)
        self._method = (
            SignatureMethod.RSA_SHA256
            if isinstance(self._key, rsa.RSAPrivateKey)
            else SignatureMethod.ECDSA_SHA256
        )
        self.kid = key_id(member, private_key.public_key())

    def sign(self, data: bytes) -> bytes:
        """The envelope ``data`` with an enveloped ds:Signature over its Body in the Header."""
        root = parse_xml(data)
        ns, header, body = _soap_parts(root)
        if root.find(f".//{{{DS}}}Signature") is not None:
            raise SigningError("malformed", "the envelope is signed already")
        body_id = body.get(_ID) or body.get("Id") or body.get("ID")
        if body_id is None:
            body_id = f"id-{uuid.uuid4().hex}"
            body.set(_ID, body_id)
        if header is None:
            header = etree.Element(f"{{{ns}}}Header")
            root.insert(0, header)
        etree.SubElement(header, f"{{{DS}}}Signature", Id="placeholder")
        key_info = etree.Element(f"{{{DS}}}KeyInfo", nsmap={"ds": DS})
        etree.SubElement(key_info, f"{{{DS}}}KeyName").text = self.kid
        signer = XMLSigner(
            signature_algorithm=self._method,
            digest_algorithm=DigestAlgorithm.SHA256,
            c14n_algorithm=_C14N,
        )
        try:
            signed = signer.sign(
                root, key=self._key, reference_uri=[f"#{body_id}"], key_info=key_info
            )
        except SignXMLException as exc:
            raise SigningError("malformed", f"cannot sign: {exc}") from None
        return bytes(etree.tostring(signed, xml_declaration=False, encoding="utf-8"))


@dataclass(frozen=True)
class VerifiedSoap:
    """What a verified envelope says: who signed it, and the signed Body (the only safe part)."""

    member: str
    kid: str
    trusted: TrustedKey
    body: etree._Element  # re-parsed from the signed canonical bytes
    signed_bytes: bytes  # the canonical Body as signed


class SoapVerifier:
    """Verifies SOAP envelopes signed by bus members (see the module docstring)."""

    def __init__(
        self,
        trust: TrustStore,
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
        max_bytes: int = MAX_XML_BYTES,
    ) -> None:
        self._trust = trust
        self._clock = clock
        self._max_bytes = max_bytes

    def verify(self, data: bytes, *, signer: str | None = None) -> VerifiedSoap:
        root = parse_xml(data, max_bytes=self._max_bytes)
        ns, header, body = _soap_parts(root)
        signatures = root.findall(f".//{{{DS}}}Signature")
        if len(signatures) != 1 or header is None or signatures[0].getparent() is not header:
            raise SigningError("wrapped", "exactly one ds:Signature, in the SOAP Header")
        signature = signatures[0]
        kid = self._key_name(signature)
        body_id = self._signed_id(signature)
        if (body.get(_ID) or body.get("Id") or body.get("ID")) != body_id:
            raise SigningError("wrapped", "the signature does not cover the SOAP Body")
        carriers = root.xpath(_CARRIERS, id=body_id)  # every element carrying that id
        if carriers != [body]:
            raise SigningError("wrapped", f"the id {body_id!r} is not the Body's alone")
        trusted = self._trust.resolve(kid)
        if trusted.certificate is None:
            raise SigningError("unsupported-alg", f"{kid} has no certificate for XMLDSig")
        config = SignatureConfiguration(
            location=f"./{{{ns}}}Header/",
            expect_references=1,
            signature_methods=_METHODS,
            digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
            verification_time=self._clock(),
        )
        try:
            result = XMLVerifier().verify(
                root, x509_cert=trusted.certificate, parser=xml_parser(), expect_config=config
            )
        except (InvalidDigest, InvalidSignature) as exc:
            raise SigningError(
                "bad-signature", f"XML signature by {kid} does not verify: {exc}"
            ) from None
        except (SignXMLException, etree.DocumentInvalid, ValueError) as exc:
            raise SigningError("malformed", f"XML signature not acceptable: {exc}") from None
        assert not isinstance(result, list)  # expect_references=1
        signed = result.signed_xml
        if signed is None or signed.tag != f"{{{ns}}}Body":
            raise SigningError("wrapped", "what was signed is not the SOAP Body")
        if signer is not None and trusted.member != signer:
            raise SigningError("wrong-signer", f"signed by {trusted.member!r}, expected {signer!r}")
        return VerifiedSoap(trusted.member, kid, trusted, signed, result.signed_data)

    @staticmethod
    def _key_name(signature: etree._Element) -> str:
        key_info = signature.findall(f"{{{DS}}}KeyInfo")
        children = list(key_info[0]) if len(key_info) == 1 else []
        if len(children) != 1 or children[0].tag != f"{{{DS}}}KeyName" or not children[0].text:
            # trust comes from the trust store, never from a key or certificate in the message
            raise SigningError("malformed", "KeyInfo must hold exactly one KeyName (a key id)")
        return children[0].text.strip()

    @staticmethod
    def _signed_id(signature: etree._Element) -> str:
        references = signature.findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
        uri = references[0].get("URI", "") if len(references) == 1 else ""
        if not uri.startswith("#") or len(uri) < 2:
            raise SigningError("wrapped", "the signature must have one reference, to an id")
        return uri[1:]
