"""Verification at each hop with certificates: each refusal its own code, problem type and reason.

Forged signature, a revoked certificate, a certificate from another CA, a provider answering
under another member's name, expired envelopes and certificates, clock skew at the bound, a
replayed reply at the gateway; and ``verify_issued`` for saved documents.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any, cast

import orjson
import pytest

from bus.core.envelope import Envelope, Kind, new_id
from bus.core.errors import (
    CertificateRevoked,
    CertificateUntrusted,
    Expired,
    ProviderInvalidAnswer,
    SignatureInvalid,
)
from bus.core.seal import Seal
from bus.exchange.client import Exchanger
from bus.gateway.problems import problem_response
from bus.policy.access import AccessPolicy
from bus.transport import Transport
from signing import JwsSigner, load_certificates, load_signing_key
from signing.ca import write_certificates
from tests.signing.pki import KEY_PASSPHRASE, T0, Pki, make_pki

CLIENT, PROVIDER, OTHER = "portal", "civil-registry", "cadastre"
SERVICE = "civil-registry/residence/v1"
MEMBERS = (CLIENT, PROVIDER, OTHER)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    pki = make_pki(tmp_path)
    pki.issue(*MEMBERS)
    return pki


def signer(pki: Pki, member: str) -> JwsSigner:
    return JwsSigner(member, load_signing_key(pki.keys / f"{member}.key", KEY_PASSPHRASE))


def node(pki: Pki, *hosts: str, **kw: Any) -> Seal:
    return Seal({m: signer(pki, m) for m in hosts}, pki.store(*MEMBERS), clock=pki.clock, **kw)


def request(**overrides: Any) -> Envelope:
    fields: dict[str, Any] = {
        "id": new_id(), "correlation": new_id(), "client": CLIENT, "service": SERVICE,
        "user": "officer-17", "purpose": "child-benefit", "subject": "31505861234567",
        "issued_at": T0, "expires_at": T0 + dt.timedelta(seconds=5), "kind": Kind.request,
        "payload": {"pinfl": "31505861234567"},
    }
    fields.update(overrides)
    return Envelope(**fields)


def refused(seal: Seal, envelope: Envelope, cls: type[Exception]) -> Any:
    with pytest.raises(cls) as info:
        seal.verify(envelope)
    assert type(info.value) is cls, type(info.value)
    return info.value


def problem(error: Any) -> dict[str, Any]:
    return cast(dict[str, Any], orjson.loads(problem_response(error).body))


def test_an_honest_exchange_verifies(pki: Pki) -> None:
    signed = node(pki, CLIENT).sign(request())
    provider = node(pki, PROVIDER)
    assert provider.verify(signed) == signed
    answer = provider.sign(signed.reply(Kind.response, {"ok": True}, now=T0))
    assert node(pki, CLIENT).verify(answer) == answer


def test_forged_signature(pki: Pki) -> None:
    signed = node(pki, CLIENT).sign(request())
    forged = signed.model_copy(update={"payload": {"pinfl": "52902001234567"}})
    error = refused(node(pki, PROVIDER), forged, SignatureInvalid)
    assert (error.code, error.reason) == ("signature-invalid", "bad-signature")
    assert problem(error)["type"].endswith("/signature-invalid")


def test_signature_by_a_revoked_certificate(pki: Pki) -> None:
    provider = node(pki, PROVIDER)
    signed = node(pki, CLIENT).sign(request())
    pki.ca.revoke(pki.ca.find(CLIENT)[0].serial_number, "key_compromise")
    pki.ticker.t += 10  # the CRL is re-read within trust.reload_s, no restart
    error = refused(provider, signed, CertificateRevoked)
    assert (error.code, error.reason, error.status) == ("certificate-revoked", "revoked", 403)
    assert error.message_id == signed.id
    body = problem(error)
    assert body["type"].endswith("/certificate-revoked") and body["code"] == "certificate-revoked"


def test_certificate_from_another_ca(pki: Pki, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "rogue", name="Interagency bus CA")
    other.issue(CLIENT)
    rogue = JwsSigner(CLIENT, load_signing_key(other.keys / f"{CLIENT}.key", KEY_PASSPHRASE))
    envelope = request()
    forged = envelope.with_signature(rogue.sign(envelope.signing_input()))
    # Its certificate is nowhere in the configuration: the key is simply unknown ...
    assert refused(node(pki, PROVIDER), forged, SignatureInvalid).reason == "unknown-key"
    # ... and slipped into the portal's certificate file, it is not the bus CA's.
    write_certificates(pki.bundle(CLIENT), load_certificates(other.bundle(CLIENT)))
    error = refused(node(pki, PROVIDER), forged, CertificateUntrusted)
    assert (error.code, error.reason) == ("certificate-untrusted", "unknown-issuer")
    assert problem(error)["type"].endswith("/certificate-untrusted")


def test_a_provider_cannot_answer_under_another_members_name(pki: Pki) -> None:
    """The cadastre, a trusted member with a valid certificate, answers a civil-registry request."""
    signed = node(pki, CLIENT).sign(request())
    reply = signed.reply(Kind.response, {"pinfl": "31505861234567"}, now=T0)
    by_cadastre = reply.with_signature(signer(pki, OTHER).sign(reply.signing_input()))
    error = refused(node(pki, CLIENT), by_cadastre, SignatureInvalid)
    assert error.reason == "wrong-signer" and "cadastre" in error.detail
    # Nor can it claim the other's key id with its own key: the signature does not verify.
    relabelled = JwsSigner(PROVIDER, signer(pki, OTHER).private_key)
    assert relabelled.kid != signer(pki, PROVIDER).kid
    forged = reply.with_signature(relabelled.sign(reply.signing_input()))
    assert refused(node(pki, CLIENT), forged, SignatureInvalid).reason == "unknown-key"


def test_expired_envelope(pki: Pki) -> None:
    signed = node(pki, CLIENT).sign(request())
    pki.clock.now = signed.expires_at
    error = refused(node(pki, PROVIDER), signed, Expired)
    assert (error.code, error.reason) == ("expired", "expired")
    assert problem(error)["type"].endswith("/expired")


@pytest.mark.parametrize(
    ("ahead", "passes"),
    [
        (dt.timedelta(seconds=30), True),  # just inside the bound
        (dt.timedelta(seconds=30, microseconds=1), False),  # just outside
        (dt.timedelta(seconds=-30), True),  # the sender's clock behind: fine while unexpired
    ],
)
def test_clock_skew_at_the_bound(pki: Pki, ahead: dt.timedelta, passes: bool) -> None:
    envelope = request(issued_at=T0 + ahead, expires_at=T0 + dt.timedelta(minutes=5))
    signed = node(pki, CLIENT).sign(envelope)
    provider = node(pki, PROVIDER, max_skew=dt.timedelta(seconds=30))
    if passes:
        assert provider.verify(signed) == signed
    else:
        assert refused(provider, signed, Expired).reason == "issued-in-future"


def test_expired_certificate(pki: Pki) -> None:
    trusted = pki.store(CLIENT).resolve(signer(pki, CLIENT).kid)
    assert trusted.not_after is not None
    late = trusted.not_after + dt.timedelta(seconds=1)
    signed = node(pki, CLIENT).sign(request(issued_at=late, expires_at=late + dt.timedelta(1)))
    pki.clock.now = late
    error = refused(node(pki, PROVIDER), signed, CertificateUntrusted)
    assert error.reason == "expired"


def test_envelope_dated_outside_its_certificate(pki: Pki) -> None:
    """Valid certificate now, but the envelope claims a time before it existed."""
    early = T0 - dt.timedelta(days=30)
    signed = node(pki, CLIENT).sign(request(issued_at=early, expires_at=T0 + dt.timedelta(1)))
    error = refused(node(pki, PROVIDER), signed, CertificateUntrusted)
    assert error.reason == "not-valid-when-signed"


def test_verify_issued_for_saved_documents(pki: Pki) -> None:
    provider = node(pki, PROVIDER)
    answer = provider.sign(request().reply(Kind.response, {"ok": True}, now=T0))
    reader = node(pki)
    pki.clock.advance(days=400)  # the certificate has expired since; the answer stands
    with pytest.raises(CertificateUntrusted):
        reader.verify(answer)
    assert reader.verify_issued(answer).member == PROVIDER
    pki.ca.revoke(pki.ca.find(PROVIDER)[0].serial_number)  # but a revocation withdraws it
    pki.ticker.t += 10
    with pytest.raises(CertificateRevoked):
        reader.verify_issued(answer)
    tampered = answer.model_copy(update={"payload": {"ok": False}})
    with pytest.raises(SignatureInvalid):
        reader.verify_issued(tampered)


def test_a_replayed_reply_is_refused_at_the_gateway(pki: Pki) -> None:
    gateway = node(pki, CLIENT)
    exchanger = Exchanger(seal=gateway, access=AccessPolicy([]), transport=cast(Transport, None))
    signed = gateway.sign(request())
    provider = node(pki, PROVIDER)
    answer = provider.sign(signed.reply(Kind.response, {"ok": True}, now=T0))
    assert exchanger.verify_reply(signed, answer) == answer
    assert exchanger.verify_reply(signed, answer) == answer  # the same reply, delivered twice
    # another reply under the same id (ECDSA: a new signature of the same content, say)
    again = provider.sign(answer.model_copy(update={"signature": None}))
    assert again.id == answer.id and again.signature != answer.signature
    with pytest.raises(ProviderInvalidAnswer, match="replayed"):
        exchanger.verify_reply(signed, again)


def test_the_crl_file_swapped_for_the_rogue_cas_does_not_unrevoke(pki: Pki, tmp_path: Path) -> None:
    provider = node(pki, PROVIDER)
    signed = node(pki, CLIENT).sign(request())
    pki.ca.revoke(pki.ca.find(CLIENT)[0].serial_number)
    pki.ticker.t += 10
    refused(provider, signed, CertificateRevoked)
    rogue = make_pki(tmp_path / "rogue")
    shutil.copy(rogue.ca.crl_path, pki.ca.crl_path)
    pki.ticker.t += 10
    refused(provider, signed, CertificateRevoked)
