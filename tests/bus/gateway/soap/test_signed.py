"""Signed SOAP requests at the gateway: the signer, the signed timestamp's window, replays."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from bus.core.errors import Expired, Replayed, SignatureInvalid
from bus.core.replay import ReplayGuard
from bus.gateway.soap.signed import MAX_LIFETIME, SignedRequests, check_window
from bus.gateway.soap.wsdl import BUS_NS
from signing import load_signing_key, xml
from signing.xml import SOAP11, SoapSigner, SoapTimestamp, SoapVerifier
from tests.signing.pki import KEY_PASSPHRASE, T0, Clock, Pki, make_pki

SKEW = dt.timedelta(seconds=30)
US = dt.timedelta(microseconds=1)
NS = "urn:bus:service:civil-registry:birth:v1"
SERVICE = "civil-registry/birth/v1"
REQUEST = (
    f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Body><GetBirthCertificate xmlns="{NS}">'
    "<pinfl>31505861234567</pinfl></GetBirthCertificate></soap:Body></soap:Envelope>"
).encode()
CONTEXT = (
    '<bus:BusContext xmlns:bus="urn:bus:soap:v1"><bus:Purpose>pension</bus:Purpose>'
    "<bus:User>operator-7</bus:User></bus:BusContext>"
)
WITH_CONTEXT = REQUEST.replace(
    b"<soap:Body>", f"<soap:Header>{CONTEXT}</soap:Header><soap:Body>".encode()
)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    pki = make_pki(tmp_path)
    pki.issue("portal", "cadastre")
    return pki


def signer(pki: Pki, member: str = "portal") -> SoapSigner:
    key = load_signing_key(pki.keys / f"{member}.key", KEY_PASSPHRASE)
    return SoapSigner(member, key, clock=pki.clock)


def checks(pki: Pki, replay: ReplayGuard | None = None) -> SignedRequests:
    return SignedRequests(
        SoapVerifier(pki.store("portal", "cadastre"), clock=pki.clock),
        replay if replay is not None else ReplayGuard(clock=pki.clock),
        clock=pki.clock,
        max_skew=SKEW,
    )


def check(pki: Pki, signed: bytes, replay: ReplayGuard | None = None) -> etree._Element:
    return checks(pki, replay).check(signed, client="portal", service=SERVICE).body


def test_a_fresh_signed_request_gives_its_signed_body(pki: Pki) -> None:
    body = check(pki, signer(pki).sign(REQUEST))
    assert body.tag == f"{{{SOAP11}}}Body"
    assert body.findtext(f".//{{{NS}}}pinfl") == "31505861234567"


def test_the_signer_must_be_the_client_and_sign_a_timestamp(pki: Pki) -> None:
    with pytest.raises(SignatureInvalid) as other:
        check(pki, signer(pki, "cadastre").sign(REQUEST))
    assert other.value.reason == "wrong-signer" and other.value.service == SERVICE
    with pytest.raises(SignatureInvalid) as bare:
        check(pki, signer(pki).sign(REQUEST, expires_in=None))  # the Body alone
    assert bare.value.reason == "no-timestamp" and "wsu:Timestamp" in bare.value.detail


# --- the time window, to the microsecond, as Seal.verify for the JSON envelopes ---------------


def test_expired_timestamp(pki: Pki) -> None:
    signed = signer(pki).sign(REQUEST, expires_in=dt.timedelta(seconds=60))
    expires = T0 + dt.timedelta(seconds=60)
    pki.clock.now = expires - US
    check(pki, signed)
    for now in (expires, expires + dt.timedelta(hours=1)):
        pki.clock.now = now
        with pytest.raises(Expired) as info:
            check(pki, signed)
        assert info.value.reason == "expired" and info.value.code == "expired"
        assert not isinstance(info.value, SignatureInvalid)


def test_created_too_far_in_the_future(pki: Pki) -> None:
    """The client's clock ahead of the node's: by the skew allowed, and by 1 µs more."""
    key = load_signing_key(pki.keys / "portal.key", KEY_PASSPHRASE)
    ahead = Clock(T0 + SKEW)
    check(pki, SoapSigner("portal", key, clock=ahead).sign(REQUEST))
    ahead.now += US
    with pytest.raises(Expired) as info:
        check(pki, SoapSigner("portal", key, clock=ahead).sign(REQUEST))
    assert info.value.reason == "issued-in-future"


def test_a_lifetime_over_the_bound_or_inverted(pki: Pki) -> None:
    check(pki, signer(pki).sign(REQUEST, expires_in=MAX_LIFETIME))
    with pytest.raises(Expired) as long:
        check(pki, signer(pki).sign(REQUEST, expires_in=MAX_LIFETIME + US))
    assert long.value.reason == "too-long"
    with pytest.raises(Expired) as inverted:
        check(pki, signer(pki).sign(REQUEST, expires_in=dt.timedelta(0)))
    assert inverted.value.reason == "inverted"


def test_check_window_alone() -> None:
    stamp = SoapTimestamp(T0, T0 + dt.timedelta(seconds=10))
    check_window(stamp, T0 - SKEW, max_skew=SKEW)
    check_window(stamp, stamp.expires - US, max_skew=SKEW)
    for now, reason in ((T0 - SKEW - US, "issued-in-future"), (stamp.expires, "expired")):
        with pytest.raises(Expired) as info:
            check_window(stamp, now, max_skew=SKEW)
        assert info.value.reason == reason


# --- replays ----------------------------------------------------------------------------------


def test_a_second_use_is_refused_and_a_fresh_request_still_passes(pki: Pki) -> None:
    replay = ReplayGuard(clock=pki.clock)
    signed = signer(pki).sign(REQUEST)
    check(pki, signed, replay)
    with pytest.raises(Replayed) as info:
        check(pki, signed, replay)
    assert info.value.code == "replayed" and info.value.client == "portal"
    # the same copy re-serialised (other bytes, same signed content) is the same request
    with pytest.raises(Replayed):
        check(pki, signed.replace(b"<soap:Body", b"<soap:Body  "), replay)
    check(pki, signer(pki).sign(REQUEST), replay)  # the same question, signed anew: fresh
    assert len(replay) == 2


def test_a_forged_or_expired_request_is_not_remembered(pki: Pki) -> None:
    replay = ReplayGuard(clock=pki.clock)
    signed = signer(pki).sign(REQUEST, expires_in=dt.timedelta(seconds=10))
    with pytest.raises(SignatureInvalid):
        check(pki, signed.replace(b"31505861234567", b"42203902740025"), replay)
    pki.clock.now = T0 + dt.timedelta(seconds=10)
    with pytest.raises(Expired):
        check(pki, signed, replay)
    assert len(replay) == 0


# --- the BusContext header --------------------------------------------------------------------


def test_a_signed_context_comes_back_signed(pki: Pki) -> None:
    assert f"{{{BUS_NS}}}BusContext" == xml.CONTEXT  # what the signer signs, the gateway reads
    verified = checks(pki).check(signer(pki).sign(WITH_CONTEXT), client="portal", service=SERVICE)
    assert verified.signed == ("Body", "Timestamp", "BusContext")
    assert verified.context is not None
    assert verified.context.findtext("{urn:bus:soap:v1}Purpose") == "pension"


def test_an_unsigned_context_beside_a_signature_is_refused(pki: Pki) -> None:
    replay = ReplayGuard(clock=pki.clock)
    signed = signer(pki).sign(REQUEST)  # signed without a BusContext, one added on the way
    added = signed.replace(b"</soap:Header>", CONTEXT.encode() + b"</soap:Header>", 1)
    assert added != signed
    with pytest.raises(SignatureInvalid) as info:
        check(pki, added, replay)
    assert info.value.reason == "unsigned-context" and info.value.code == "signature-invalid"
    assert len(replay) == 0  # refused before the replay memory
    tampered = signer(pki).sign(WITH_CONTEXT).replace(b">pension<", b">tax-audit<")
    with pytest.raises(SignatureInvalid) as bad:
        check(pki, tampered, replay)
    assert bad.value.reason == "bad-signature"
