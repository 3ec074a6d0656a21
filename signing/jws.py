"""Detached JWS (RFC 7515, appendix F) with an unencoded payload (RFC 7797).

A signature is ``BASE64URL(protected header) + ".." + BASE64URL(signature)``; the protected header
is ``{"alg":…,"b64":false,"crit":["b64"],"kid":…}`` and the signing input is
``ASCII(BASE64URL(header)) || "." || payload`` where the payload is the RFC 8785 canonical JSON of
the signed object. ``alg`` follows the key: ``EdDSA`` for Ed25519, ``ES256`` for ECDSA P-256
(signature ``r || s``, 32 bytes each, RFC 7518 §3.4). The verifier refuses an ``alg`` that does
not match the trusted key of the ``kid``. Anyone with a JCS library and the signer's public key
can verify it.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Any, Protocol

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from signing.canonical import canonical_json
from signing.errors import SigningError
from signing.keys import PrivateKey, PublicKey, key_id
from signing.truststore import TrustedKey, TrustStore

__all__ = ["JwsSigner", "JwsVerifier", "Signer", "canonical_json"]

_MAX_HEADER = 512
_ALGS = ("EdDSA", "ES256")
_ECDSA = ec.ECDSA(hashes.SHA256())


def _b64e(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64d(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _alg_of(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and isinstance(
        key.curve, ec.SECP256R1
    ):
        return "ES256"
    raise SigningError("unsupported-alg", f"no JWS algorithm for a {type(key).__name__}")


class Signer(Protocol):
    """What signs envelopes as one member: ``JwsSigner``, or one that follows a key file."""

    member: str

    @property
    def kid(self) -> str: ...

    def sign(self, payload: bytes) -> str: ...


class JwsSigner:
    """Signs bytes or JSON objects as one member with one private key (loaded once)."""

    def __init__(self, member: str, private_key: PrivateKey) -> None:
        self.member = member
        self._key = private_key
        self.kid = key_id(member, private_key.public_key())
        self.alg = _alg_of(private_key)
        header = {"alg": self.alg, "b64": False, "crit": ["b64"], "kid": self.kid}
        self._header_b64 = _b64e(canonical_json(header))

    @property
    def private_key(self) -> PrivateKey:
        return self._key

    def sign(self, payload: bytes) -> str:
        data = self._header_b64 + b"." + payload
        if isinstance(self._key, Ed25519PrivateKey):
            signature = self._key.sign(data)
        else:
            assert isinstance(self._key, ec.EllipticCurvePrivateKey)  # _alg_of checked it
            r, s = decode_dss_signature(self._key.sign(data, _ECDSA))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return (self._header_b64 + b".." + _b64e(signature)).decode("ascii")

    def sign_json(self, obj: Any) -> str:
        return self.sign(canonical_json(obj))


@lru_cache(maxsize=1024)
def _parse_header(header_b64: str) -> tuple[str, str]:
    """Validate a protected header; return its alg and key id (cached: headers repeat)."""
    try:
        header = orjson.loads(_b64d(header_b64))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise SigningError("malformed", "JWS header is not base64url JSON") from exc
    if not isinstance(header, dict):
        raise SigningError("malformed", "JWS header is not an object")
    alg = header.get("alg")
    if alg not in _ALGS:
        raise SigningError("unsupported-alg", f"unsupported JWS alg {alg!r}")
    if header.get("b64") is not False or header.get("crit") != ["b64"]:
        raise SigningError("malformed", "JWS must use an unencoded payload (b64=false, crit=[b64])")
    if set(header) - {"alg", "b64", "crit", "kid"}:
        raise SigningError("malformed", "JWS header has unexpected members")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise SigningError("malformed", "JWS header has no key id")
    return str(alg), kid


def _verify(public_key: PublicKey, signature: bytes, data: bytes) -> None:
    """Raise InvalidSignature (or ValueError) unless ``signature`` is the key's over ``data``."""
    if isinstance(public_key, Ed25519PublicKey):
        public_key.verify(signature, data)
        return
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or len(signature) != 64:
        raise InvalidSignature
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public_key.verify(der, data, _ECDSA)


class JwsVerifier:
    """Verifies detached signatures against keys resolved from a trust store."""

    def __init__(self, trust: TrustStore) -> None:
        self._trust = trust

    def verify(self, payload: bytes, token: str) -> TrustedKey:
        """Return the trusted key that made ``token`` over ``payload``, or raise SigningError."""
        if not isinstance(token, str) or len(token) > _MAX_HEADER + 200:
            raise SigningError("malformed", "signature is not a detached JWS")
        parts = token.split(".")
        if len(parts) != 3 or parts[1] != "" or not parts[0] or len(parts[0]) > _MAX_HEADER:
            raise SigningError("malformed", "signature is not a detached compact JWS (header..sig)")
        alg, kid = _parse_header(parts[0])
        trusted = self._trust.resolve(kid)
        if _alg_of(trusted.public_key) != alg:  # no algorithm confusion: the key decides
            raise SigningError("unsupported-alg", f"alg {alg} does not match the key of {kid}")
        try:
            _verify(trusted.public_key, _b64d(parts[2]), parts[0].encode("ascii") + b"." + payload)
        except (InvalidSignature, binascii.Error, ValueError, UnicodeEncodeError):
            raise SigningError("bad-signature", f"signature by {kid} does not verify") from None
        return trusted

    def verify_json(self, obj: Any, token: str) -> TrustedKey:
        return self.verify(canonical_json(obj), token)
