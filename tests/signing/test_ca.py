"""The bus CA folder: creating and opening it, issuing, revoking, rotating member keys."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from signing import (
    CertificateAuthority,
    SigningError,
    issue_member,
    key_id,
    load_certificates,
    load_signing_key,
    member_of,
    rotate_member,
)
from tests.signing.pki import CA_PASSPHRASE, KEY_PASSPHRASE, T0, make_pki


def test_create_writes_an_encrypted_key_a_ca_certificate_and_an_empty_crl(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    folder = tmp_path / "ca"
    assert b"ENCRYPTED" in (folder / "ca.key").read_bytes()
    assert stat.S_IMODE((folder / "ca.key").stat().st_mode) == 0o600
    ca_cert = pki.ca.certificate
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca_cert.issuer == ca_cert.subject
    assert isinstance(ca_cert.public_key(), ec.EllipticCurvePublicKey)
    crl = x509.load_pem_x509_crl((folder / "crl.pem").read_bytes())
    assert list(crl) == [] and crl.is_signature_valid(ca_cert.public_key())  # type: ignore[arg-type]


def test_create_refuses_no_passphrase_and_an_existing_ca(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="passphrase"):
        CertificateAuthority.create(tmp_path / "ca", b"")
    make_pki(tmp_path)
    with pytest.raises(FileExistsError):
        CertificateAuthority.create(tmp_path / "ca", CA_PASSPHRASE)


def test_open_needs_the_right_passphrase(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    opened = CertificateAuthority.open(tmp_path / "ca", CA_PASSPHRASE)
    assert opened.certificate == pki.ca.certificate
    with pytest.raises(SigningError) as info:
        CertificateAuthority.open(tmp_path / "ca", b"wrong")
    assert info.value.reason == "key-error"
    assert "wrong" not in info.value.detail


def test_issued_certificate_names_the_member_and_is_for_signing_only(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    pki.issue("civil-registry", days=30)
    (certificate,) = load_certificates(pki.bundle("civil-registry"))
    assert member_of(certificate) == "civil-registry"
    cn = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert [a.value for a in cn] == ["civil-registry"]
    assert certificate.issuer == pki.ca.certificate.subject
    certificate.verify_directly_issued_by(pki.ca.certificate)
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert certificate.not_valid_before_utc < T0 < certificate.not_valid_after_utc
    assert certificate.not_valid_after_utc == T0 + dt.timedelta(days=30)


def test_member_key_is_encrypted_p256_and_matches_its_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    pki.issue("portal")
    key_file = pki.keys / "portal.key"
    assert b"ENCRYPTED" in key_file.read_bytes()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with pytest.raises(SigningError):
        load_signing_key(key_file)
    key = load_signing_key(key_file, KEY_PASSPHRASE)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    (certificate,) = load_certificates(pki.bundle("portal"))
    assert key_id("portal", certificate.public_key()) == key_id("portal", key.public_key())  # type: ignore[arg-type]


def test_the_index_records_what_was_issued(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    pki.issue("portal", "cadastre")
    records = pki.ca.issued()
    assert [r.member for r in records] == ["portal", "cadastre"]
    (certificate,) = load_certificates(pki.bundle("cadastre"))
    serial = f"{certificate.serial_number:X}"
    assert records[1].serial == serial and records[1].revoked_at is None
    assert records[1].kid == key_id("cadastre", certificate.public_key())  # type: ignore[arg-type]
    assert pki.ca.find("cadastre") == [records[1]]
    colons = ":".join(serial[i : i + 2] for i in range(0, len(serial), 2))
    assert pki.ca.find(colons) == [records[1]] == pki.ca.find("0x" + serial.lower())
    assert pki.ca.find("nobody") == []


def test_revoking_updates_the_index_and_publishes_a_new_crl(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    pki.issue("portal", "cadastre")
    before = x509.load_pem_x509_crl(pki.ca.crl_path.read_bytes())
    record = pki.ca.find("cadastre")[0]
    pki.ca.revoke(record.serial_number, "key_compromise")
    crl = x509.load_pem_x509_crl(pki.ca.crl_path.read_bytes())
    assert [r.serial_number for r in crl] == [record.serial_number]
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number == before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
    (revoked,) = crl
    reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise
    assert pki.ca.find("cadastre")[0].revoked_at == T0.isoformat()
    data = json.loads((tmp_path / "ca" / "issued.json").read_text())
    assert data["crl_number"] == number


def test_revoking_an_unknown_serial_or_with_an_unknown_reason(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    pki.issue("portal")
    with pytest.raises(KeyError):
        pki.ca.revoke(12345)
    with pytest.raises(ValueError, match="reason"):
        pki.ca.revoke(pki.ca.find("portal")[0].serial_number, "bored")


def test_issue_refuses_a_member_that_has_a_key(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    pki.issue("portal")
    with pytest.raises(FileExistsError, match="rotate"):
        pki.issue("portal")
    with pytest.raises(SigningError, match="passphrase"):
        issue_member(pki.ca, pki.keys, "tax", passphrase=b"")


def test_rotate_puts_the_new_certificate_first_and_keeps_unexpired_ones(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    pki.issue("portal", days=10)
    (first,) = load_certificates(pki.bundle("portal"))
    old_key = load_signing_key(pki.keys / "portal.key", KEY_PASSPHRASE)
    pki.clock.advance(days=1)
    files = rotate_member(pki.ca, pki.keys, "portal", passphrase=KEY_PASSPHRASE, days=5)
    assert load_certificates(pki.bundle("portal")) == [files.certificate, first]
    new_key = load_signing_key(pki.keys / "portal.key", KEY_PASSPHRASE)
    assert key_id("portal", new_key.public_key()) != key_id("portal", old_key.public_key())
    # Ten days on, the first certificate has expired: the next rotation drops it.
    pki.clock.advance(days=10)
    third = rotate_member(pki.ca, pki.keys, "portal", passphrase=KEY_PASSPHRASE).certificate
    assert load_certificates(pki.bundle("portal")) == [third]


def test_rotate_needs_an_issued_member(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    with pytest.raises(FileNotFoundError, match="issue"):
        rotate_member(pki.ca, pki.keys, "portal", passphrase=KEY_PASSPHRASE)
