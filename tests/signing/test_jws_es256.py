"""JWS with ECDSA P-256 (ES256), the algorithm of certified member keys; no algorithm confusion."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from signing import (
    JwsSigner,
    JwsVerifier,
    SigningError,
    StaticTrustStore,
    canonical_json,
    generate_signing_key,
)

DOC = {"service": "civil-registry/residence/v1", "payload": {"pinfl": "31505861234567"}}


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def p256() -> JwsSigner:
    return JwsSigner("civil-registry", generate_signing_key())


@pytest.fixture
def verifier(p256: JwsSigner) -> JwsVerifier:
    store = StaticTrustStore()
    store.add("civil-registry", p256.private_key.public_key())
    return JwsVerifier(store)


def reason_of(verifier: JwsVerifier, payload: bytes, token: str) -> str:
    with pytest.raises(SigningError) as info:
        verifier.verify(payload, token)
    return info.value.reason


def test_es256_round_trip(p256: JwsSigner, verifier: JwsVerifier) -> None:
    token = p256.sign_json(DOC)
    header, middle, signature = token.split(".")
    assert middle == ""
    assert json.loads(b64d(header)) == {
        "alg": "ES256", "b64": False, "crit": ["b64"], "kid": p256.kid,
    }
    assert len(b64d(signature)) == 64  # r || s, not DER
    assert verifier.verify_json(DOC, token).member == "civil-registry"
    # ECDSA is randomised: another signature of the same bytes, just as valid
    again = p256.sign_json(DOC)
    assert again != token and verifier.verify_json(DOC, again).kid == p256.kid


def test_es256_verifies_with_plain_cryptography(p256: JwsSigner) -> None:
    """What a portal developer does by hand: r || s back to DER, then ECDSA-SHA256."""
    token = p256.sign_json(DOC)
    header, _, signature = token.split(".")
    raw = b64d(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key = p256.private_key.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(der, header.encode() + b"." + canonical_json(DOC), ec.ECDSA(hashes.SHA256()))


def test_tampered_payload_or_signature(p256: JwsSigner, verifier: JwsVerifier) -> None:
    token = p256.sign_json(DOC)
    assert reason_of(verifier, canonical_json({**DOC, "x": 1}), token) == "bad-signature"
    header, _, signature = token.split(".")
    raw = bytearray(b64d(signature))
    raw[5] ^= 1
    assert reason_of(verifier, canonical_json(DOC), f"{header}..{b64e(bytes(raw))}") == (
        "bad-signature"
    )
    assert reason_of(verifier, canonical_json(DOC), f"{header}..{b64e(bytes(raw[:63]))}") == (
        "bad-signature"
    )


def test_der_signature_is_refused(p256: JwsSigner, verifier: JwsVerifier) -> None:
    header = p256.sign(b"x").split(".")[0]
    key = p256.private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    der = key.sign(header.encode() + b".x", ec.ECDSA(hashes.SHA256()))
    assert reason_of(verifier, b"x", f"{header}..{b64e(der)}") == "bad-signature"


def test_alg_must_match_the_key_of_the_kid(p256: JwsSigner) -> None:
    """No algorithm confusion: EdDSA claimed for a P-256 kid (and ES256 for an Ed25519 kid)."""
    ed = JwsSigner("portal", Ed25519PrivateKey.generate())
    store = StaticTrustStore()
    store.add("civil-registry", p256.private_key.public_key())
    store.add("portal", ed.private_key.public_key())
    verifier = JwsVerifier(store)
    for signer, alg in ((p256, "EdDSA"), (ed, "ES256")):
        header = b64e(canonical_json({"alg": alg, "b64": False, "crit": ["b64"],
                                      "kid": signer.kid}))
        signature = signer.sign(b"x").split(".")[2]
        assert reason_of(verifier, b"x", f"{header}..{signature}") == "unsupported-alg"


def test_other_curves_cannot_sign() -> None:
    with pytest.raises(SigningError) as info:
        JwsSigner("portal", ec.generate_private_key(ec.SECP384R1()))
    assert info.value.reason == "unsupported-alg"
