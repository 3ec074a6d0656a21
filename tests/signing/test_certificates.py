"""The certificate trust store: chain to the bus CA, member names, validity, revocation, reload."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from signing import (
    CertificateRevokedError,
    CertificateTrustStore,
    CertificateUntrustedError,
    JwsSigner,
    JwsVerifier,
    SigningError,
    load_ca_certificate,
    load_certificates,
    load_signing_key,
    rotate_member,
)
from signing.ca import write_certificates
from tests.signing.pki import KEY_PASSPHRASE, T0, Pki, make_pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    pki = make_pki(tmp_path)
    pki.issue("portal", "civil-registry", "tax")
    return pki


def signer(pki: Pki, member: str) -> JwsSigner:
    return JwsSigner(member, load_signing_key(pki.keys / f"{member}.key", KEY_PASSPHRASE))


def untrusted(store: CertificateTrustStore, kid: str) -> CertificateUntrustedError:
    with pytest.raises(CertificateUntrustedError) as info:
        store.resolve(kid)
    return info.value


def test_resolves_a_member_key_to_its_certificate(pki: Pki) -> None:
    store = pki.store("portal", "civil-registry")
    s = signer(pki, "civil-registry")
    trusted = store.resolve(s.kid)
    assert trusted.member == "civil-registry"
    assert trusted.certificate == load_certificates(pki.bundle("civil-registry"))[0]
    assert trusted.serial == pki.ca.find("civil-registry")[0].serial
    assert store.members() == {"portal", "civil-registry"}
    # and the JWS verifier works over it unchanged (ES256)
    token = s.sign(b"payload")
    assert JwsVerifier(store).verify(b"payload", token) == trusted


def test_a_member_not_configured_is_unknown(pki: Pki) -> None:
    store = pki.store("portal")
    with pytest.raises(SigningError) as info:
        store.resolve(signer(pki, "tax").kid)
    assert info.value.reason == "unknown-key"
    assert not isinstance(info.value, CertificateUntrustedError)


def test_a_certificate_from_another_ca_is_not_trusted(pki: Pki, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other", name="Interagency bus CA")  # same name, other key
    other.issue("portal")
    store = pki.store("portal")
    # The impostor's certificate is put in the portal's bundle (a swapped file, say).
    shutil.copy(other.bundle("portal"), pki.bundle("portal"))
    store.reload()
    assert untrusted(store, signer(other, "portal").kid).reason == "unknown-issuer"
    with pytest.raises(SigningError) as info:  # ... and the real portal's key is gone with it
        store.resolve(signer(pki, "portal").kid)
    assert info.value.reason == "unknown-key"


def test_a_certificate_in_another_members_file_is_not_trusted(pki: Pki) -> None:
    tax_bundle = load_certificates(pki.bundle("tax"))
    write_certificates(pki.bundle("portal"), tax_bundle)  # the tax's certificate as the portal's
    store = pki.store("portal")
    error = untrusted(store, signer(pki, "tax").kid.replace("tax#", "portal#"))
    assert error.reason == "wrong-member"


def test_the_ca_certificate_must_be_a_ca(pki: Pki) -> None:
    with pytest.raises(SigningError) as info:
        load_ca_certificate(pki.bundle("portal"))
    assert info.value.reason == "key-error"
    with pytest.raises(SigningError):
        CertificateTrustStore.from_files(
            pki.bundle("portal"), {"portal": pki.bundle("portal")}, pki.ca.crl_path
        )


def test_validity_in_time(pki: Pki) -> None:
    store = pki.store("portal")
    kid = signer(pki, "portal").kid
    trusted = store.resolve(kid)
    assert trusted.not_after == T0 + dt.timedelta(days=365)
    assert trusted.not_after is not None and trusted.not_before is not None
    pki.clock.now = trusted.not_after + dt.timedelta(seconds=1)
    assert untrusted(store, kid).reason == "expired"
    pki.clock.now = trusted.not_before - dt.timedelta(seconds=1)
    assert untrusted(store, kid).reason == "not-yet-valid"
    # resolve_at and at(): validity at another time (a saved document's), revocation now
    assert store.resolve_at(kid, T0) == trusted
    assert store.at(T0).resolve(kid) == trusted


def test_revocation_takes_effect_without_a_restart(pki: Pki) -> None:
    store = pki.store("portal", "tax", reload_s=5)
    kid = signer(pki, "tax").kid
    store.resolve(kid)
    pki.ca.revoke(pki.ca.find("tax")[0].serial_number, "key_compromise")
    pki.ticker.t += 4.9
    assert store.resolve(kid).member == "tax"  # not checked yet: at most every reload_s
    pki.ticker.t += 0.2
    with pytest.raises(CertificateRevokedError) as info:
        store.resolve(kid)
    assert info.value.reason == "revoked"
    assert store.members() == {"portal"}  # what readiness reports
    with pytest.raises(CertificateRevokedError):  # revoked at any time, not only now
        store.resolve_at(kid, T0)
    assert store.resolve(signer(pki, "portal").kid).member == "portal"


def test_reload_hook_applies_a_new_crl_at_once(pki: Pki) -> None:
    store = pki.store("tax", reload_s=3600)
    pki.ca.revoke(pki.ca.find("tax")[0].serial_number)
    assert store.reload() is True
    with pytest.raises(CertificateRevokedError):
        store.resolve(signer(pki, "tax").kid)
    assert store.reload() is False  # nothing changed since


def test_a_crl_not_signed_by_the_ca_is_refused(pki: Pki, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other")
    with pytest.raises(SigningError, match="not signed by the bus CA"):
        CertificateTrustStore.from_files(
            pki.ca.certificate_path, {"tax": pki.bundle("tax")}, other.ca.crl_path
        )
    # On reload, a forged list does not replace the one in force.
    store = pki.store("tax")
    pki.ca.revoke(pki.ca.find("tax")[0].serial_number)
    shutil.copy(other.ca.crl_path, pki.ca.crl_path)
    assert store.reload() is False
    assert store.resolve(signer(pki, "tax").kid).member == "tax"


def test_an_older_crl_does_not_unrevoke(pki: Pki, tmp_path: Path) -> None:
    old_crl = tmp_path / "old-crl.pem"
    shutil.copy(pki.ca.crl_path, old_crl)
    pki.ca.revoke(pki.ca.find("tax")[0].serial_number)
    store = pki.store("tax")
    shutil.copy(old_crl, pki.ca.crl_path)  # validly signed by the CA, but older
    assert store.reload() is False
    with pytest.raises(CertificateRevokedError):
        store.resolve(signer(pki, "tax").kid)


def test_rotation_keeps_the_old_key_until_its_certificate_expires(pki: Pki) -> None:
    store = pki.store("portal", reload_s=3600)
    old = signer(pki, "portal")
    token = old.sign(b"x")
    pki.clock.advance(days=30)
    rotate_member(pki.ca, pki.keys, "portal", passphrase=KEY_PASSPHRASE, days=365)
    new = signer(pki, "portal")
    # The first signature by the new key is found at once (an unknown key id re-reads the files).
    assert JwsVerifier(store).verify(b"y", new.sign(b"y")).kid == new.kid
    assert JwsVerifier(store).verify(b"x", token).kid == old.kid
    pki.clock.now = T0 + dt.timedelta(days=365, seconds=1)  # the old certificate has ended
    assert untrusted(store, old.kid).reason == "expired"
    assert store.resolve(new.kid).member == "portal"


def test_same_key_certified_twice_resolves_to_a_valid_certificate(pki: Pki) -> None:
    key = load_signing_key(pki.keys / "portal.key", KEY_PASSPHRASE)
    first = load_certificates(pki.bundle("portal"))[0]
    second = pki.ca.issue("portal", key.public_key(), days=900)
    write_certificates(pki.bundle("portal"), [first, second])
    pki.ca.revoke(first.serial_number)
    store = pki.store("portal")
    assert store.resolve(signer(pki, "portal").kid).certificate == second


def test_missing_certificate_file_is_a_key_error(pki: Pki) -> None:
    pki.bundle("portal").unlink()
    with pytest.raises(SigningError) as info:
        pki.store("portal")
    assert info.value.reason == "key-error"


def test_garbage_in_a_bundle_is_a_key_error(pki: Pki) -> None:
    pki.bundle("portal").write_bytes(
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    with pytest.raises(SigningError) as info:
        pki.store("portal")
    assert info.value.reason == "key-error"
