"""XML signatures (XMLDSig) for SOAP parties, and XML parsed as hostile until proven otherwise.

``parse_xml`` is the one way XML is read: a size limit before parsing, then a hardened lxml
parser (``xml_parser``: no entity resolution, no network, no DTD loading, no huge trees), and a
document with a DOCTYPE is refused outright.

``SoapSigner`` signs the ``Body`` of a SOAP 1.1/1.2 envelope with ``signxml``: exclusive C14N,
SHA-256 digest, ``ecdsa-sha256`` (P-256 keys, what the bus CA certifies) or ``rsa-sha256`` (RSA
keys of 2048 bits or more). The key is a ``cryptography`` object loaded once (signxml given PEM
bytes re-parses the key on every call). ``KeyInfo`` holds only a ``KeyName``: the key id, as in
JWS (``<member>#<fingerprint>``). By default (``expires_in``) it signs, as WS-Security does, a
``wsu:Timestamp`` (``Created`` now, ``Expires``) besides the Body, both placed in a
``wsse:Security`` header with the signature; with ``expires_in=None`` only the Body is signed
and the signature sits in the ``Header`` itself. A ``BusContext`` header (``CONTEXT``, the
bus's purpose and user; at most one, directly under the Header) is signed too, given a
``wsu:Id`` if it has none, as the last reference (exclusive C14N, like the others).

``SoapVerifier`` checks a signed envelope against the same trust store as the JSON envelopes:
the key id is resolved (certificate chained to the bus CA, not revoked, valid now) and the
signature is verified with that certificate, never with a key or certificate carried in the
message. Against signature wrapping, it requires: exactly one ``Envelope/Header`` and one
``Envelope/Body``; exactly one ``ds:Signature``, in the Header or in its one ``wsse:Security``;
a first reference to the Body's id; then, only for a signature in ``wsse:Security``, perhaps
one to the id of that header's one ``wsu:Timestamp``; then perhaps one to the id of the one
``BusContext`` of the Header, which must then be the only ``BusContext`` of the envelope; each
id carried by no other element. It returns only what was signed (``signxml``'s ``signed_xml``,
re-parsed from the canonical bytes), never the received tree. Callers must consume
``VerifiedSoap.body``, ``timestamp`` (the signed ``Created`` and ``Expires``, or None when no
timestamp was signed) and ``context`` (the signed ``BusContext``, or None) and nothing else of
the message; ``signed`` names what was signed (``Body``, ``Timestamp``, ``BusContext``), and
``unsigned_context`` says that a ``BusContext`` came along unsigned (a caller that reads one
must refuse such a message); ``digest`` (SHA-256 of everything signed) is the same for every
copy of a signed message whatever its signature bytes (ECDSA signatures are malleable), a key to
remember it by.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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
    "CONTEXT",
    "MAX_XML_BYTES",
    "SOAP11",
    "SOAP12",
    "SoapSigner",
    "SoapTimestamp",
    "SoapVerifier",
    "VerifiedSoap",
    "parse_xml",
    "xml_parser",
]

MAX_XML_BYTES = 1_048_576
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecext-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
CONTEXT = "{urn:bus:soap:v1}BusContext"  # the bus's SOAP header: purpose, user, correlation, mode
_ID = f"{{{WSU}}}Id"
_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
_CARRIERS = "//*[@*[local-name() = 'Id' or local-name() = 'ID'] = $id]"
_TAGS = {"Timestamp": f"{{{WSU}}}Timestamp", "BusContext": CONTEXT}
_METHODS = frozenset({SignatureMethod.ECDSA_SHA256, SignatureMethod.RSA_SHA256})
DEFAULT_EXPIRES_IN = dt.timedelta(minutes=5)  # WSS4J's default time to live of a Timestamp


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


def _id_of(element: etree._Element) -> str | None:
    return element.get(_ID) or element.get("Id") or element.get("ID")


def _xsd_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _read_time(element: etree._Element, name: str) -> dt.datetime:
    found = element.findall(f"{{{WSU}}}{name}")
    text = found[0].text if len(found) == 1 else None
    try:
        moment = dt.datetime.fromisoformat((text or "").strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise SigningError("malformed", f"wsu:Timestamp needs one {name}, a dateTime with a zone")
    return moment


class SoapSigner:
    """Signs SOAP envelopes' Body as one member, with a key object loaded once."""

    def __init__(
        self,
        member: str,
        private_key: PrivateKey,
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.member = member
        self._key = _xml_key(private_key)
        self._method = (
            SignatureMethod.RSA_SHA256
            if isinstance(self._key, rsa.RSAPrivateKey)
            else SignatureMethod.ECDSA_SHA256
        )
        self.kid = key_id(member, private_key.public_key())
        self._clock = clock

    def sign(
        self, data: bytes, *, expires_in: dt.timedelta | None = DEFAULT_EXPIRES_IN
    ) -> bytes:
        """The envelope ``data`` with an enveloped ds:Signature over its Body: with a signed
        ``wsu:Timestamp`` valid ``expires_in`` from now, both in ``wsse:Security``; without
        (``None``), the signature in the Header and over the Body only. A ``BusContext``
        header (at most one, under the Header) is signed too, as the last reference."""
        root = parse_xml(data)
        ns, header, body = _soap_parts(root)
        if root.find(f".//{{{DS}}}Signature") is not None:
            raise SigningError("malformed", "the envelope is signed already")
        body_id = _id_of(body)
        if body_id is None:
            body_id = f"id-{uuid.uuid4().hex}"
            body.set(_ID, body_id)
        if header is None:
            header = etree.Element(f"{{{ns}}}Header")
            root.insert(0, header)
        references = [f"#{body_id}"]
        parent = header
        if expires_in is not None:
            if header.find(f"{{{WSSE}}}Security") is not None:
                raise SigningError("malformed", "the envelope has a wsse:Security header already")
            parent = etree.SubElement(
                header, f"{{{WSSE}}}Security", {f"{{{ns}}}mustUnderstand": "1"},
                nsmap={"wsse": WSSE, "wsu": WSU},
            )
            stamp_id = f"ts-{uuid.uuid4().hex}"
            stamp = etree.SubElement(parent, f"{{{WSU}}}Timestamp", {_ID: stamp_id})
            created = self._clock()
            etree.SubElement(stamp, f"{{{WSU}}}Created").text = _xsd_time(created)
            etree.SubElement(stamp, f"{{{WSU}}}Expires").text = _xsd_time(created + expires_in)
            references.append(f"#{stamp_id}")
        contexts = header.findall(CONTEXT)
        if len(contexts) > 1:
            raise SigningError("malformed", "the envelope has more than one BusContext header")
        if contexts:
            context_id = _id_of(contexts[0])
            if context_id is None:
                context_id = f"ctx-{uuid.uuid4().hex}"
                contexts[0].set(_ID, context_id)
            references.append(f"#{context_id}")
        etree.SubElement(parent, f"{{{DS}}}Signature", Id="placeholder", nsmap={"ds": DS})
        key_info = etree.Element(f"{{{DS}}}KeyInfo", nsmap={"ds": DS})
        etree.SubElement(key_info, f"{{{DS}}}KeyName").text = self.kid
        signer = XMLSigner(
            signature_algorithm=self._method,
            digest_algorithm=DigestAlgorithm.SHA256,
            c14n_algorithm=_C14N,
        )
        try:
            signed = signer.sign(
                root, key=self._key, reference_uri=references, key_info=key_info
            )
        except SignXMLException as exc:
            raise SigningError("malformed", f"cannot sign: {exc}") from None
        return bytes(etree.tostring(signed, xml_declaration=False, encoding="utf-8"))


@dataclass(frozen=True)
class SoapTimestamp:
    """The signed ``wsu:Timestamp`` of a message: when it was made and until when it holds."""

    created: dt.datetime
    expires: dt.datetime


@dataclass(frozen=True)
class VerifiedSoap:
    """What a verified envelope says: who signed it, the signed Body (the only safe part), the
    signed timestamp and BusContext if they were signed, the names of the signed parts, whether
    an unsigned BusContext came along, and the digest of everything signed."""

    member: str
    kid: str
    trusted: TrustedKey
    body: etree._Element  # re-parsed from the signed canonical bytes
    signed_bytes: bytes  # the canonical Body as signed
    timestamp: SoapTimestamp | None = None
    digest: str = ""  # SHA-256 hex over the canonical bytes of every signed part, in order
    context: etree._Element | None = None  # the signed BusContext, re-parsed, if one was signed
    signed: tuple[str, ...] = ("Body",)  # what was signed, in order: Body, Timestamp, BusContext
    unsigned_context: bool = False  # a BusContext is in the message but was not signed


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
        signature, location = self._placed(root, ns, header)
        kid = self._key_name(signature)
        ids = self._signed_ids(signature)
        if _id_of(body) != ids[0]:
            raise SigningError("wrapped", "the signature does not cover the SOAP Body first")
        names, signed_parts = self._signed_parts(root, header, signature, ids[1:])
        for part_id, part in zip(ids, [body, *signed_parts], strict=True):
            if root.xpath(_CARRIERS, id=part_id) != [part]:  # every element carrying that id
                raise SigningError("wrapped", f"the id {part_id!r} is not one element's alone")
        trusted = self._trust.resolve(kid)
        if trusted.certificate is None:
            raise SigningError("unsupported-alg", f"{kid} has no certificate for XMLDSig")
        config = SignatureConfiguration(
            location=location,
            expect_references=len(ids),
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
        results = result if isinstance(result, list) else [result]
        signed = results[0].signed_xml
        if signed is None or signed.tag != f"{{{ns}}}Body":
            raise SigningError("wrapped", "what was signed is not the SOAP Body")
        timestamp = context = None
        for name, part in zip(names, results[1:], strict=True):
            tag = _TAGS[name]
            if part.signed_xml is None or part.signed_xml.tag != tag:
                raise SigningError("wrapped", f"what was signed is not the {name}")
            if name == "Timestamp":
                stamp = part.signed_xml
                timestamp = SoapTimestamp(
                    _read_time(stamp, "Created"), _read_time(stamp, "Expires")
                )
            else:
                context = part.signed_xml
        if signer is not None and trusted.member != signer:
            raise SigningError("wrong-signer", f"signed by {trusted.member!r}, expected {signer!r}")
        digest = hashlib.sha256()
        for part in results:
            digest.update(hashlib.sha256(part.signed_data).digest())
        unsigned_context = context is None and next(root.iter(CONTEXT), None) is not None
        return VerifiedSoap(trusted.member, kid, trusted, signed, results[0].signed_data,
                            timestamp, digest.hexdigest(), context, ("Body", *names),
                            unsigned_context)

    @staticmethod
    def _signed_parts(
        root: etree._Element,
        header: etree._Element | None,
        signature: etree._Element,
        ids: list[str],
    ) -> tuple[list[str], list[etree._Element]]:
        """Names and elements of what the references after the Body's point to, in order:
        the wsu:Timestamp of the signature's wsse:Security, then the one BusContext of the
        Header (the only BusContext of the envelope); anything else is wrapping."""
        names: list[str] = []
        parts: list[etree._Element] = []
        security = signature.getparent()
        if ids and security is not None and security is not header:
            stamps = security.findall(f"{{{WSU}}}Timestamp")
            if len(stamps) == 1 and _id_of(stamps[0]) == ids[0]:
                names.append("Timestamp")
                parts.append(stamps[0])
                ids = ids[1:]
        if ids:
            contexts = [] if header is None else header.findall(CONTEXT)
            if (
                len(ids) != 1
                or len(contexts) != 1
                or _id_of(contexts[0]) != ids[0]
                or list(root.iter(CONTEXT)) != contexts
            ):
                raise SigningError(
                    "wrapped",
                    "after the Body's, the references must be the wsu:Timestamp of the "
                    "signature's wsse:Security, then the one BusContext under the SOAP Header",
                )
            names.append("BusContext")
            parts.append(contexts[0])
        return names, parts

    @staticmethod
    def _placed(
        root: etree._Element, ns: str, header: etree._Element | None
    ) -> tuple[etree._Element, str]:
        """The one signature, and its location for signxml: in the Header or its one
        ``wsse:Security``."""
        signatures = root.findall(f".//{{{DS}}}Signature")
        if len(signatures) == 1 and header is not None:
            parent = signatures[0].getparent()
            if parent is header:
                return signatures[0], f"./{{{ns}}}Header/"
            securities = header.findall(f"{{{WSSE}}}Security")
            if securities == [parent]:
                return signatures[0], f"./{{{ns}}}Header/{{{WSSE}}}Security/"
        raise SigningError(
            "wrapped", "exactly one ds:Signature, in the SOAP Header or its wsse:Security"
        )

    @staticmethod
    def _key_name(signature: etree._Element) -> str:
        key_info = signature.findall(f"{{{DS}}}KeyInfo")
        children = list(key_info[0]) if len(key_info) == 1 else []
        if len(children) != 1 or children[0].tag != f"{{{DS}}}KeyName" or not children[0].text:
            # trust comes from the trust store, never from a key or certificate in the message
            raise SigningError("malformed", "KeyInfo must hold exactly one KeyName (a key id)")
        return children[0].text.strip()

    @staticmethod
    def _signed_ids(signature: etree._Element) -> list[str]:
        """The ids referenced: the Body's, then perhaps the Timestamp's and the BusContext's."""
        references = signature.findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
        uris = [r.get("URI", "") for r in references]
        if not 1 <= len(uris) <= 3 or any(not u.startswith("#") or len(u) < 2 for u in uris):
            raise SigningError("wrapped", "the signature must have one to three references, to ids")
        return [u[1:] for u in uris]
