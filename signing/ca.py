"""The bus certificate authority: its key and certificate, what it issued, and its CRL.

A CA is a folder (kept off the nodes; only ``ca.crt`` and ``crl.pem`` are copied to them)::

    ca.key       the CA's ECDSA P-256 key, PKCS#8 encrypted with the CA passphrase
    ca.crt       its self-signed certificate: what every node trusts
    crl.pem      the certificate revocation list, re-signed on every revocation (``publish_crl``)
    issued.json  what it issued: serial, member, key id, validity, revocation

and member files in a keys folder (``issue_member``, ``rotate_member``)::

    <member>.key  the member's ECDSA P-256 key, encrypted with the member key passphrase
    <member>.crt  the member's certificates: the current one first, then older ones that have not
                  expired (a rotated key's signatures stay verifiable until its certificate ends)

Member keys are P-256 so that one key per member signs both JWS (ES256) and XMLDSig
(ecdsa-sha256); signxml has no Ed25519. Every file is replaced atomically.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signing.certificates import MEMBER_URN, load_ca_certificate, load_certificates
from signing.errors import SigningError
from signing.files import private_dir, write_private
from signing.keys import PublicKey, generate_signing_key, key_id, write_private_key
from signing.revocation import Revoked, build_crl, write_crl

__all__ = [
    "CertificateAuthority",
    "Issued",
    "MemberFiles",
    "issue_member",
    "rotate_member",
    "write_certificates",
]

_BACKDATE = dt.timedelta(minutes=5)  # tolerate clocks a little behind the CA's
_REASONS = {r.name: r for r in x509.ReasonFlags if r.name not in ("remove_from_crl",)}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def write_certificates(path: Path, certificates: list[x509.Certificate]) -> Path:
    """Write a member's certificate bundle (PEM, in order), replacing the file atomically."""
    write_private(path, b"".join(_pem(c) for c in certificates))
    return path


@dataclass
class Issued:
    """One certificate the CA issued, as ``issued.json`` records it."""

    serial: str  # hex, upper case
    member: str
    kid: str
    not_before: str
    not_after: str
    revoked_at: str | None = None
    reason: str | None = None

    @property
    def serial_number(self) -> int:
        return int(self.serial, 16)


class CertificateAuthority:
    """A bus CA folder opened with its passphrase (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        key: ec.EllipticCurvePrivateKey,
        certificate: x509.Certificate,
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.directory = directory
        self._key = key
        self.certificate = certificate
        self.clock = clock

    @property
    def certificate_path(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def crl_path(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def _index_path(self) -> Path:
        return self.directory / "issued.json"

    @classmethod
    def create(
        cls,
        directory: Path,
        passphrase: bytes,
        *,
        name: str = "Interagency bus CA",
        days: int = 3650,
        crl_days: int = 30,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> CertificateAuthority:
        if not passphrase:
            raise SigningError("key-error", "the CA key must be encrypted: give a passphrase")
        if (directory / "ca.key").exists():
            raise FileExistsError(f"{directory / 'ca.key'} exists; refusing to replace a CA")
        private_dir(directory)
        key = generate_signing_key()
        now = clock()
        subject = x509.Name(
            [
                x509.NameAttribute(x509.NameOID.COMMON_NAME, name),
                x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Interagency data-exchange bus"),
            ]
        )
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        write_private_key(directory / "ca.key", key, passphrase)
        write_private(directory / "ca.crt", _pem(certificate))
        ca = cls(directory, key, certificate, clock=clock)
        ca._write_index({"crl_number": 0, "issued": []})
        ca.publish_crl(days=crl_days)
        return ca

    @classmethod
    def open(
        cls, directory: Path, passphrase: bytes, *, clock: Callable[[], dt.datetime] = _utcnow
    ) -> CertificateAuthority:
        try:
            key = serialization.load_pem_private_key(
                (directory / "ca.key").read_bytes(), password=passphrase or None
            )
        except (OSError, ValueError, TypeError) as exc:
            raise SigningError(
                "key-error", f"cannot open the CA key in {directory}: {exc}"
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SigningError("key-error", f"{directory / 'ca.key'} is not an ECDSA key")
        return cls(directory, key, load_ca_certificate(directory / "ca.crt"), clock=clock)

    # --- the index ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock = os.open(self.directory / ".lock", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        with os.fdopen(lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def _read_index(self) -> dict[str, object]:
        try:
            data = json.loads(self._index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"crl_number": 0, "issued": []}
        return data if isinstance(data, dict) else {"crl_number": 0, "issued": []}

    def _write_index(self, data: dict[str, object]) -> None:
        write_private(self._index_path, json.dumps(data, indent=2).encode("utf-8"))

    def issued(self) -> list[Issued]:
        records = self._read_index().get("issued", [])
        return [Issued(**r) for r in records] if isinstance(records, list) else []

    def find(self, selector: str) -> list[Issued]:
        """Certificates of a member (by code), or the one with a serial (hex, ``:`` allowed)."""
        records = self.issued()
        by_member = [r for r in records if r.member == selector]
        if by_member:
            return by_member
        try:
            serial = int(selector.replace(":", "").removeprefix("0x"), 16)
        except ValueError:
            return []
        return [r for r in records if r.serial_number == serial]

    # --- issuing and revoking -----------------------------------------------------------------

    def issue(self, member: str, public_key: PublicKey, *, days: int = 365) -> x509.Certificate:
        """A certificate for ``member``'s ``public_key``, recorded in ``issued.json``."""
        now = self.clock()
        not_after = min(now + dt.timedelta(days=days), self.certificate.not_valid_after_utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, member)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(MEMBER_URN + member)]),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), False
            )
            .sign(self._key, hashes.SHA256())
        )
        with self._locked():
            index = self._read_index()
            records = index.setdefault("issued", [])
            assert isinstance(records, list)
            record = Issued(
                serial=f"{certificate.serial_number:X}",
                member=member,
                kid=key_id(member, public_key),
                not_before=certificate.not_valid_before_utc.isoformat(),
                not_after=certificate.not_valid_after_utc.isoformat(),
            )
            records.append(asdict(record))
            self._write_index(index)
        return certificate

    def revoke(self, serial: int, reason: str = "unspecified") -> Issued:
        """Put one certificate on the revocation list and publish a new CRL."""
        if reason not in _REASONS:
            raise ValueError(f"unknown revocation reason {reason!r} (one of {sorted(_REASONS)})")
        with self._locked():
            index = self._read_index()
            records = index.get("issued", [])
            assert isinstance(records, list)
            for record in records:
                if int(record["serial"], 16) == serial:
                    if record.get("revoked_at") is None:
                        record["revoked_at"] = self.clock().isoformat()
                        record["reason"] = reason
                        self._write_index(index)
                    found = Issued(**record)
                    break
            else:
                raise KeyError(f"no certificate with serial {serial:X} was issued by this CA")
        self.publish_crl()
        return found

    def publish_crl(self, *, days: int = 30) -> Path:
        """Sign and write a new CRL of every revoked certificate (next update in ``days``)."""
        with self._locked():
            index = self._read_index()
            number = int(index.get("crl_number", 0) or 0) + 1  # type: ignore[call-overload]
            index["crl_number"] = number
            revoked = [
                Revoked(
                    r.serial_number,
                    dt.datetime.fromisoformat(r.revoked_at),
                    _REASONS.get(r.reason or "unspecified", x509.ReasonFlags.unspecified),
                )
                for r in self.issued()
                if r.revoked_at is not None
            ]
            now = self.clock()
            crl = build_crl(
                self._key,
                self.certificate,
                revoked,
                number=number,
                now=now,
                next_update=now + dt.timedelta(days=days),
            )
            self._write_index(index)
            return write_crl(self.crl_path, crl)


# --- member files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberFiles:
    key: Path
    certificates: Path
    certificate: x509.Certificate  # the one just issued


def issue_member(
    ca: CertificateAuthority,
    keys_dir: Path,
    member: str,
    *,
    passphrase: bytes,
    days: int = 365,
) -> MemberFiles:
    """A first key and certificate for ``member``: ``<member>.key`` and ``<member>.crt``."""
    if not passphrase:
        raise SigningError("key-error", "member keys must be encrypted: give a passphrase")
    key_path, cert_path = keys_dir / f"{member}.key", keys_dir / f"{member}.crt"
    for path in (key_path, cert_path):
        if path.exists():
            raise FileExistsError(f"{path} exists; use rotate to give {member} a new key")
    key = generate_signing_key()
    certificate = ca.issue(member, key.public_key(), days=days)
    write_certificates(cert_path, [certificate])
    write_private_key(key_path, key, passphrase)
    return MemberFiles(key_path, cert_path, certificate)


def rotate_member(
    ca: CertificateAuthority,
    keys_dir: Path,
    member: str,
    *,
    passphrase: bytes,
    days: int = 365,
) -> MemberFiles:
    """A new key and certificate for ``member``; older certificates stay until they expire.

    The bundle is written first (new certificate first), then the key: a node that follows the
    key file signs with the new key only once verifiers on the same machine can find its
    certificate. Expired certificates are dropped from the bundle.
    """
    if not passphrase:
        raise SigningError("key-error", "member keys must be encrypted: give a passphrase")
    key_path, cert_path = keys_dir / f"{member}.key", keys_dir / f"{member}.crt"
    if not cert_path.exists():
        raise FileNotFoundError(f"{cert_path} does not exist; use issue for a new member")
    now = ca.clock()
    kept = [c for c in load_certificates(cert_path) if c.not_valid_after_utc > now]
    key = generate_signing_key()
    certificate = ca.issue(member, key.public_key(), days=days)
    write_certificates(cert_path, [certificate, *kept])
    write_private_key(key_path, key, passphrase)
    return MemberFiles(key_path, cert_path, certificate)
