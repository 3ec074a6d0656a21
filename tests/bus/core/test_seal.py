"""Sealing envelopes: who signs which kind, and what ``verify`` refuses."""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bus.core.envelope import Envelope, Kind, new_id
from bus.core.errors import BusUnavailable, Expired, RequestRefused, SignatureInvalid
from bus.core.seal import Seal
from signing import (
    JwsSigner,
    StaticTrustStore,
    generate_member_key,
    load_private_key,
)

T0 = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=dt.UTC)
CLIENT, PROVIDER, OTHER = "portal", "civil-registry", "tax-committee"
SERVICE = "civil-registry/residence/v1"


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: dt.datetime = T0

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Bus:
    signers: dict[str, JwsSigner]
    trust: StaticTrustStore
    clock: Clock

    def node(self, *members: str, **kw: Any) -> Seal:
        """A node holding the keys of ``members`` (and trusting every member)."""
        return Seal({m: self.signers[m] for m in members}, self.trust, clock=self.clock, **kw)


@pytest.fixture
def bus(tmp_path: Path) -> Bus:
    signers, public = {}, {}
    for member in (CLIENT, PROVIDER, OTHER):
        private_path, public[member] = generate_member_key(tmp_path, member)
        signers[member] = JwsSigner(member, load_private_key(private_path))
    return Bus(signers, StaticTrustStore.from_files(public), Clock())


def request(**overrides: Any) -> Envelope:
    fields: dict[str, Any] = {
        "id": new_id(), "correlation": new_id(), "client": CLIENT, "service": SERVICE,
        "user": "officer-17", "purpose": "child-benefit", "subject": "31505861234567",
        "issued_at": T0, "expires_at": T0 + dt.timedelta(seconds=5), "kind": Kind.request,
        "payload": {"pinfl": "31505861234567"},
    }
    fields.update(overrides)
    return Envelope(**fields)


def kid_of(envelope: Envelope) -> str:
    """The key id in the signature's protected header."""
    assert envelope.signature is not None
    header = envelope.signature.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def refusal(seal: Seal, envelope: Envelope) -> SignatureInvalid:
    with pytest.raises(SignatureInvalid) as info:
        seal.verify(envelope)
    return info.value


# --- signing ----------------------------------------------------------------------------------


def test_request_is_signed_as_the_client(bus: Bus) -> None:
    gateway = bus.node(CLIENT)
    signed = gateway.sign(request())
    assert signed.signature
    assert kid_of(signed) == bus.signers[CLIENT].kid
    assert bus.node(PROVIDER).verify(signed) == signed


@pytest.mark.parametrize("kind", [Kind.response, Kind.error])
def test_response_and_error_are_signed_as_the_provider(bus: Bus, kind: Kind) -> None:
    provider = bus.node(CLIENT, PROVIDER)  # holds both keys: must still pick the provider's
    reply = request().reply(kind, {"ok": True}, now=T0)
    signed = provider.sign(reply)
    assert kid_of(signed) == bus.signers[PROVIDER].kid
    assert bus.node(CLIENT).verify(signed) == signed


def test_signing_without_the_members_key_is_our_fault(bus: Bus) -> None:
    provider_node = bus.node(PROVIDER)
    assert provider_node.hosts(PROVIDER) and not provider_node.hosts(CLIENT)
    with pytest.raises(BusUnavailable, match="portal"):
        provider_node.sign(request())
    with pytest.raises(BusUnavailable, match="civil-registry"):
        bus.node(CLIENT).sign(request().reply(Kind.response, {}, now=T0))


def test_signed_envelope_survives_the_wire(bus: Bus) -> None:
    signed = bus.node(CLIENT).sign(request(payload={"pinfl": "31505861234567", "x": [1.5, "Ў"]}))
    received = Envelope.from_json(signed.to_json())
    assert bus.node(PROVIDER).verify(received) == signed


def test_resigning_replaces_the_signature(bus: Bus) -> None:
    gateway = bus.node(CLIENT)
    once = gateway.sign(request())
    twice = gateway.sign(once)
    assert twice.signature == once.signature  # the signature is not part of what is signed


# --- refusals ---------------------------------------------------------------------------------


def test_missing_signature(bus: Bus) -> None:
    envelope = request()
    error = refusal(bus.node(PROVIDER), envelope)
    assert error.reason == "missing"
    assert (error.message_id, error.client, error.service) == (envelope.id, CLIENT, SERVICE)
    assert refusal(bus.node(PROVIDER), envelope.with_signature("")).reason == "missing"


@pytest.mark.parametrize(
    "update",
    [
        {"payload": {"pinfl": "52902001234567"}},
        {"payload": {"pinfl": "31505861234567", "also": "this"}},
        {"purpose": "tax-audit"},
        {"expires_at": T0 + dt.timedelta(days=1)},
        {"client": OTHER},
        {"subject": None},
        {"correlation": new_id()},
    ],
)
def test_tampered_envelope_is_a_bad_signature(bus: Bus, update: dict[str, Any]) -> None:
    signed = bus.node(CLIENT).sign(request())
    tampered = signed.model_copy(update=update)
    error = refusal(bus.node(PROVIDER), tampered)
    assert error.reason == "bad-signature"
    assert error.message_id == signed.id


def test_response_signed_with_the_clients_key_is_the_wrong_signer(bus: Bus) -> None:
    reply = request().reply(Kind.response, {"pinfl": "31505861234567"}, now=T0)
    forged = reply.with_signature(bus.signers[CLIENT].sign(reply.signing_input()))
    error = refusal(bus.node(CLIENT), forged)
    assert error.reason == "wrong-signer"
    assert "portal" in error.detail and "civil-registry" in error.detail


def test_request_signed_by_another_member_is_the_wrong_signer(bus: Bus) -> None:
    envelope = request()
    for member in (PROVIDER, OTHER):
        forged = envelope.with_signature(bus.signers[member].sign(envelope.signing_input()))
        assert refusal(bus.node(PROVIDER), forged).reason == "wrong-signer"


def test_a_node_hosting_both_members_cannot_be_tricked_either(bus: Bus) -> None:
    # A response signed by the client, checked on a node that holds both keys.
    reply = request().reply(Kind.error, {"code": "no-data"}, now=T0)
    forged = reply.with_signature(bus.signers[CLIENT].sign(reply.signing_input()))
    assert refusal(bus.node(CLIENT, PROVIDER), forged).reason == "wrong-signer"


def test_unknown_key(bus: Bus) -> None:
    stranger = JwsSigner(CLIENT, Ed25519PrivateKey.generate())  # claims to be the portal
    envelope = request()
    forged = envelope.with_signature(stranger.sign(envelope.signing_input()))
    assert refusal(bus.node(PROVIDER), forged).reason == "unknown-key"


@pytest.mark.parametrize("signature", ["garbage", "a.b", "a.b.c", "..", "bm90IGpzb24..AAAA"])
def test_malformed_signature(bus: Bus, signature: str) -> None:
    assert refusal(bus.node(PROVIDER), request(signature=signature)).reason == "malformed"


def test_payload_that_has_no_canonical_form_is_refused_not_crashed(bus: Bus) -> None:
    """RFC 8785 has no form for integers beyond 2**53: a typed refusal, not a ValueError."""
    signed = bus.node(CLIENT).sign(request())
    hostile = Envelope.from_json(
        signed.to_json().replace(b'"payload":{', b'"payload":{"n":123456789012345678901234,')
    )
    error = refusal(bus.node(PROVIDER), hostile)
    assert error.reason == "malformed"
    assert isinstance(error, RequestRefused)


# --- time window ------------------------------------------------------------------------------


def test_expired_envelope(bus: Bus) -> None:
    signed = bus.node(CLIENT).sign(request())
    provider = bus.node(PROVIDER)
    bus.clock.now = signed.expires_at - dt.timedelta(microseconds=1)
    assert provider.verify(signed) == signed
    for now in (signed.expires_at, signed.expires_at + dt.timedelta(hours=1)):
        bus.clock.now = now
        with pytest.raises(Expired) as info:
            provider.verify(signed)
        assert info.value.message_id == signed.id
        assert not isinstance(info.value, SignatureInvalid)


def test_issued_too_far_in_the_future(bus: Bus) -> None:
    signed = bus.node(CLIENT).sign(
        request(issued_at=T0 + dt.timedelta(seconds=31), expires_at=T0 + dt.timedelta(minutes=5))
    )
    with pytest.raises(Expired, match="future"):
        bus.node(PROVIDER).verify(signed)


@pytest.mark.parametrize("ahead", [dt.timedelta(0), dt.timedelta(seconds=10),
                                   dt.timedelta(seconds=30)])
def test_clock_skew_inside_the_bound_passes(bus: Bus, ahead: dt.timedelta) -> None:
    signed = bus.node(CLIENT).sign(
        request(issued_at=T0 + ahead, expires_at=T0 + dt.timedelta(minutes=5))
    )
    assert bus.node(PROVIDER).verify(signed) == signed


def test_max_skew_is_configurable(bus: Bus) -> None:
    signed = bus.node(CLIENT).sign(
        request(issued_at=T0 + dt.timedelta(seconds=3), expires_at=T0 + dt.timedelta(minutes=5))
    )
    assert bus.node(PROVIDER, max_skew=dt.timedelta(seconds=3)).verify(signed) == signed
    with pytest.raises(Expired):
        bus.node(PROVIDER, max_skew=dt.timedelta(seconds=2)).verify(signed)


def test_time_is_compared_across_time_zones(bus: Bus) -> None:
    tashkent = dt.timezone(dt.timedelta(hours=5))
    signed = bus.node(CLIENT).sign(request(
        issued_at=T0.astimezone(tashkent),
        expires_at=(T0 + dt.timedelta(seconds=5)).astimezone(tashkent),
    ))
    bus.clock.now = T0 + dt.timedelta(seconds=4)
    assert bus.node(PROVIDER).verify(signed) == signed
    bus.clock.now = T0 + dt.timedelta(seconds=5)
    with pytest.raises(Expired):
        bus.node(PROVIDER).verify(signed)


def test_signature_is_checked_before_the_time_window(bus: Bus) -> None:
    signed = bus.node(CLIENT).sign(request())
    bus.clock.now = T0 + dt.timedelta(days=1)
    tampered = signed.model_copy(update={"purpose": "other"})
    assert refusal(bus.node(PROVIDER), tampered).reason == "bad-signature"


def test_envelope_expiring_before_it_was_issued_is_refused(bus: Bus) -> None:
    seal = bus.node(CLIENT, PROVIDER)
    envelope = request(issued_at=T0, expires_at=T0 - dt.timedelta(seconds=1))
    with pytest.raises(Expired, match="before it was issued"):
        seal.verify(seal.sign(envelope))
