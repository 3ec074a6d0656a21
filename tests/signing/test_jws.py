"""Detached JWS (EdDSA, unencoded canonical-JSON payload): signing, verifying, refusing."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signing import (
    JwsSigner,
    JwsVerifier,
    SigningError,
    StaticTrustStore,
    canonical_json,
    generate_member_key,
    key_id,
    load_private_key,
    load_public_key,
)

DOC: dict[str, Any] = {
    "service": "civil-registry/residence/v1",
    "payload": {"pinfl": "31505861234567", "names": ["Dilnoza", "Ўзбек"], "n": 1.5, "ok": True},
    "subject": None,
}


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def header_b64(header: dict[str, Any]) -> str:
    return b64e(json.dumps(header, separators=(",", ":")).encode())


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """Key files of two members; returns {member: directory}."""
    for member in ("portal", "civil-registry"):
        generate_member_key(tmp_path, member)
    return {"portal": tmp_path, "civil-registry": tmp_path}


@pytest.fixture
def signers(keys: dict[str, Path]) -> dict[str, JwsSigner]:
    return {m: JwsSigner(m, load_private_key(d / f"{m}.key")) for m, d in keys.items()}


@pytest.fixture
def verifier(keys: dict[str, Path]) -> JwsVerifier:
    return JwsVerifier(StaticTrustStore.from_files({m: d / f"{m}.pub" for m, d in keys.items()}))


def reason_of(verifier: JwsVerifier, payload: bytes, token: Any) -> str:
    with pytest.raises(SigningError) as info:
        verifier.verify(payload, token)
    return info.value.reason


# --- round trip -------------------------------------------------------------------------------


def test_sign_and_verify_round_trip(signers: dict[str, JwsSigner], verifier: JwsVerifier) -> None:
    token = signers["portal"].sign_json(DOC)
    trusted = verifier.verify_json(DOC, token)
    assert trusted.member == "portal"
    assert trusted.kid == signers["portal"].kid
    assert verifier.verify(canonical_json(DOC), token) == trusted


def test_token_is_a_detached_compact_jws_with_the_expected_header(
    signers: dict[str, JwsSigner],
) -> None:
    token = signers["civil-registry"].sign(b"anything")
    header, middle, signature = token.split(".")
    assert middle == ""
    assert json.loads(b64d(header)) == {
        "alg": "EdDSA", "b64": False, "crit": ["b64"], "kid": signers["civil-registry"].kid,
    }
    assert len(b64d(signature)) == 64
    assert "=" not in token


def test_key_order_does_not_matter(signers: dict[str, JwsSigner], verifier: JwsVerifier) -> None:
    reordered = {k: DOC[k] for k in reversed(list(DOC))}
    reordered["payload"] = {k: DOC["payload"][k] for k in reversed(list(DOC["payload"]))}
    assert list(reordered) != list(DOC)
    assert canonical_json(reordered) == canonical_json(DOC)
    # Ed25519 is deterministic, so the same canonical bytes give the same token ...
    assert signers["portal"].sign_json(reordered) == signers["portal"].sign_json(DOC)
    # ... and a signature over one order verifies over the other.
    assert verifier.verify_json(reordered, signers["portal"].sign_json(DOC)).member == "portal"


def test_verify_is_over_exact_bytes(signers: dict[str, JwsSigner], verifier: JwsVerifier) -> None:
    token = signers["portal"].sign_json(DOC)
    pretty = json.dumps(DOC, indent=2).encode()
    assert reason_of(verifier, pretty, token) == "bad-signature"
    assert verifier.verify_json(json.loads(pretty), token).member == "portal"


def test_canonical_json_is_rfc8785() -> None:
    assert canonical_json({"b": [1.0, 1e21, "é"], "a": None}) == (
        b'{"a":null,"b":[1,1e+21,"\xc3\xa9"]}'
    )


# --- an independent implementation ------------------------------------------------------------


def test_signature_verifies_with_cryptography_directly(
    keys: dict[str, Path], signers: dict[str, JwsSigner]
) -> None:
    token = signers["portal"].sign_json(DOC)
    # Rebuild everything from the RFCs, using the public key file only.
    public_key = load_public_key(keys["portal"] / "portal.pub")
    header: dict[str, Any] = {
        "alg": "EdDSA", "b64": False, "crit": ["b64"], "kid": key_id("portal", public_key),
    }
    expected_header = b64e(rfc8785.dumps(header))
    header_part, _, signature_part = token.split(".")
    assert header_part == expected_header
    signing_input = expected_header.encode("ascii") + b"." + rfc8785.dumps(DOC)
    public_key.verify(b64d(signature_part), signing_input)  # raises InvalidSignature if wrong
    with pytest.raises(InvalidSignature):
        public_key.verify(b64d(signature_part), signing_input + b" ")


def test_a_hand_made_signature_verifies(keys: dict[str, Path], verifier: JwsVerifier) -> None:
    private_key = load_private_key(keys["civil-registry"] / "civil-registry.key")
    kid = key_id("civil-registry", private_key.public_key())
    header = b64e(rfc8785.dumps({"kid": kid, "crit": ["b64"], "b64": False, "alg": "EdDSA"}))
    signature = private_key.sign(header.encode("ascii") + b"." + rfc8785.dumps(DOC))
    token = f"{header}..{b64e(signature)}"
    assert verifier.verify_json(DOC, token).member == "civil-registry"


# --- forgeries and tampering ------------------------------------------------------------------


def test_tampered_payload_is_a_bad_signature(
    signers: dict[str, JwsSigner], verifier: JwsVerifier
) -> None:
    token = signers["portal"].sign_json(DOC)
    tampered = json.loads(json.dumps(DOC))
    tampered["payload"]["pinfl"] = "52902001234567"
    with pytest.raises(SigningError) as info:
        verifier.verify_json(tampered, token)
    assert info.value.reason == "bad-signature"
    assert reason_of(verifier, b"", token) == "bad-signature"


@pytest.mark.parametrize("index", [0, 31, 32, 63])
def test_tampered_signature_bytes_are_a_bad_signature(
    signers: dict[str, JwsSigner], verifier: JwsVerifier, index: int
) -> None:
    header, _, signature = signers["portal"].sign_json(DOC).split(".")
    raw = bytearray(b64d(signature))
    raw[index] ^= 0x01
    assert reason_of(verifier, canonical_json(DOC), f"{header}..{b64e(bytes(raw))}") == (
        "bad-signature"
    )


@pytest.mark.parametrize(
    "signature", ["", "AAAA", b64e(b"\x00" * 64), b64e(b"\x00" * 65), "!!!!", "é" * 8]
)
def test_wrong_sized_or_garbage_signatures_are_bad_signatures(
    signers: dict[str, JwsSigner], verifier: JwsVerifier, signature: str
) -> None:
    header = signers["portal"].sign_json(DOC).split(".")[0]
    assert reason_of(verifier, canonical_json(DOC), f"{header}..{signature}") == "bad-signature"


def test_unknown_key_id(verifier: JwsVerifier) -> None:
    stranger = JwsSigner("portal", Ed25519PrivateKey.generate())
    assert reason_of(verifier, b"x", stranger.sign(b"x")) == "unknown-key"


def test_a_members_signature_cannot_be_passed_off_as_anothers(
    keys: dict[str, Path], signers: dict[str, JwsSigner], verifier: JwsVerifier
) -> None:
    payload = canonical_json(DOC)
    portal_token = signers["portal"].sign(payload)
    _, _, portal_signature = portal_token.split(".")
    provider_kid = signers["civil-registry"].kid
    portal_hash = signers["portal"].kid.split("#")[1]

    # The key id decides who signed: a genuine portal signature is the portal's.
    assert verifier.verify(payload, portal_token).member == "portal"

    # Relabel the portal's signature with the provider's key id: checked with the provider's key.
    header = {"alg": "EdDSA", "b64": False, "crit": ["b64"], "kid": provider_kid}
    relabelled = f"{header_b64(header)}..{portal_signature}"
    assert reason_of(verifier, payload, relabelled) == "bad-signature"

    # ... and re-signed over the new header with the portal's own key: still the provider's kid.
    forged_header = header_b64(header)
    key = load_private_key(keys["portal"] / "portal.key")
    forged = f"{forged_header}..{b64e(key.sign(forged_header.encode() + b'.' + payload))}"
    assert reason_of(verifier, payload, forged) == "bad-signature"

    # A made-up kid naming the provider with the portal's key hash is simply unknown.
    header["kid"] = f"civil-registry#{portal_hash}"
    invented = f"{header_b64(header)}..{portal_signature}"
    assert reason_of(verifier, payload, invented) == "unknown-key"


# --- headers we refuse ------------------------------------------------------------------------


def _good_header(signers: dict[str, JwsSigner]) -> dict[str, Any]:
    return {"alg": "EdDSA", "b64": False, "crit": ["b64"], "kid": signers["portal"].kid}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"alg": "none"}, "unsupported-alg"),
        ({"alg": "HS256"}, "unsupported-alg"),
        ({"alg": "RS256"}, "unsupported-alg"),
        ({"alg": "ES256"}, "unsupported-alg"),
        ({"alg": "eddsa"}, "unsupported-alg"),
        ({"alg": None}, "unsupported-alg"),
        ({"b64": True}, "malformed"),
        ({"b64": None}, "malformed"),
        ({"b64": "false"}, "malformed"),
        ({"crit": None}, "malformed"),
        ({"crit": []}, "malformed"),
        ({"crit": ["b64", "exp"]}, "malformed"),
        ({"kid": None}, "malformed"),
        ({"kid": ""}, "malformed"),
        ({"kid": 7}, "malformed"),
        ({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}}, "malformed"),
        ({"x5u": "http://evil.example/cert"}, "malformed"),
    ],
)
def test_refused_headers(
    keys: dict[str, Path],
    signers: dict[str, JwsSigner],
    verifier: JwsVerifier,
    change: dict[str, Any],
    reason: str,
) -> None:
    header = _good_header(signers)
    for k, v in change.items():
        if v is None:
            header.pop(k, None)
        else:
            header[k] = v
    payload = canonical_json(DOC)
    h = header_b64(header)
    # Even a real signature over this header by a trusted key does not help.
    key = load_private_key(keys["portal"] / "portal.key")
    signature = b64e(key.sign(h.encode() + b"." + payload))
    assert reason_of(verifier, payload, f"{h}..{signature}") == reason


@pytest.mark.parametrize(
    "header_part",
    [b64e(b"not json"), b64e(b"[1,2]"), b64e(b'"EdDSA"'), "%%%%", "\u00e9\u00e9",
     b64e(b"\xff\xfe")],
)
def test_header_that_is_not_a_json_object_is_malformed(
    verifier: JwsVerifier, header_part: str
) -> None:
    assert reason_of(verifier, b"x", f"{header_part}..{b64e(b'0' * 64)}") == "malformed"


# --- shapes we refuse -------------------------------------------------------------------------


def test_not_three_parts_is_malformed(signers: dict[str, JwsSigner], verifier: JwsVerifier) -> None:
    token = signers["portal"].sign_json(DOC)
    header, _, signature = token.split(".")
    payload = canonical_json(DOC)
    for bad in ["", ".", "..", header, f"{header}.{signature}", f"{header}...{signature}",
                f"{token}.", f"..{signature}"]:
        assert reason_of(verifier, payload, bad) == "malformed", bad


def test_attached_payload_in_the_middle_is_malformed(
    signers: dict[str, JwsSigner], verifier: JwsVerifier
) -> None:
    payload = canonical_json(DOC)
    header, _, signature = signers["portal"].sign(payload).split(".")
    for middle in [b64e(payload), "x", payload.decode()]:
        assert reason_of(verifier, payload, f"{header}.{middle}.{signature}") == "malformed"


@pytest.mark.parametrize("token", [None, 42, b"header..sig", "h" * 5000 + ".." + "s" * 86])
def test_non_string_or_oversized_tokens_are_malformed(verifier: JwsVerifier, token: Any) -> None:
    assert reason_of(verifier, b"x", token) == "malformed"


def test_oversized_header_is_malformed(
    signers: dict[str, JwsSigner], verifier: JwsVerifier
) -> None:
    header = {**_good_header(signers), "kid": "portal#" + "a" * 380}
    assert reason_of(verifier, b"x", f"{header_b64(header)}..{b64e(b'0' * 64)}") == "malformed"
