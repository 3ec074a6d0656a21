"""Detached JWS (RFC 7515, appendix F) with an unencoded payload (RFC 7797), Ed25519 (EdDSA).

A signature is ``BASE64URL(protected header) + ".." + BASE64URL(signature)``; the protected header
is ``{"alg":"EdDSA","b64":false,"crit":["b64"],"kid":…}`` and the signing input is
``ASCII(BASE64URL(header)) || "." || payload`` where the payload is the RFC 8785 canonical JSON of
the signed object. Anyone with a JCS library and the signer's public key can verify it.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Any

import orjson
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signing.errors import SigningError
from signing.keys import key_id
from signing.truststore import TrustedKey, TrustStore

__all__ = ["JwsSigner", "JwsVerifier", "canonical_json"]

_MAX_HEADER = 512


def _b64e(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64d(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JCS) canonical form of a JSON-compatible object."""
    return rfc8785.dumps(obj)


class JwsSigner:
    """Signs bytes or JSON objects as one member with one private key (loaded once)."""

    def __init__(self, member: str, private_key: Ed25519PrivateKey) -> None:
        self.member = member
        self._key = private_key
        self.kid = key_id(member, private_key.public_key())
        header = {"alg": "EdDSA", "b64": False, "crit": ["b64"], "kid": self.kid}
        self._header_b64 = _b64e(canonical_json(header))

    def sign(self, payload: bytes) -> str:
        signature = self._key.sign(self._header_b64 + b"." + payload)
        return (self._header_b64 + b".." + _b64e(signature)).decode("ascii")

    def sign_json(self, obj: Any) -> str:
        return self.sign(canonical_json(obj))


@lru_cache(maxsize=1024)
def _parse_header(header_b64: str) -> str:
    """Validate a protected header and return its key id (cached: headers repeat per signer)."""
    try:
        header = orjson.loads(_b64d(header_b64))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise SigningError("malformed", "JWS header is not base64url JSON") from exc
    if not isinstance(header, dict):
        raise SigningError("malformed", "JWS header is not an object")
    if header.get("alg") != "EdDSA":
        raise SigningError("unsupported-alg", f"unsupported JWS alg {header.get('alg')!r}")
    if header.get("b64") is not False or header.get("crit") != ["b64"]:
        raise SigningError("malformed", "JWS must use an unencoded payload (b64=false, crit=[b64])")
    if set(header) - {"alg", "b64", "crit", "kid"}:
        raise SigningError("malformed", "JWS header has unexpected members")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise SigningError("malformed", "JWS header has no key id")
    return kid


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
        kid = _parse_header(parts[0])
        trusted = self._trust.resolve(kid)
        try:
            signature = _b64d(parts[2])
            trusted.public_key.verify(signature, parts[0].encode("ascii") + b"." + payload)
        except (InvalidSignature, binascii.Error, ValueError, UnicodeEncodeError):
            raise SigningError("bad-signature", f"signature by {kid} does not verify") from None
        return trusted

    def verify_json(self, obj: Any, token: str) -> TrustedKey:
        return self.verify(canonical_json(obj), token)
