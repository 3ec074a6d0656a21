"""Member certificates and the trust store built on them.

A member certificate is issued by the bus CA (``signing.ca``) for one member's key: subject CN
``<member>`` and the SAN URI ``urn:bus:member:<member>``, which is what names the member;
``BasicConstraints(ca=False)`` and the ``digitalSignature`` key usage. Its key is ECDSA P-256
(JWS ES256 and XMLDSig ecdsa-sha256; what the CA makes), Ed25519 (JWS only) or RSA of 2048 bits
or more (XMLDSig rsa-sha256 only).

``CertificateTrustStore`` resolves a key id (``<member>#<fingerprint>``, as for bare keys) from
the certificate files of the members in the configuration (one PEM bundle per member: the
current certificate and older ones that have not expired yet, so a rotated key stays
verifiable). It checks, for each certificate, that it chains to the bus CA and names the member
it is configured for (at load), and on every ``resolve`` that it is not on the revocation list
and is valid now (or at the time given to ``resolve_at``). Files are re-read when they change:
checked at most every ``reload_s`` seconds, and at once when an unknown key id is asked for (so a
certificate added by a rotation is found by the first signature made with the new key).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from signing.errors import CertificateRevokedError, CertificateUntrustedError, SigningError
from signing.keys import MIN_RSA_BITS, PublicKey, key_id
from signing.revocation import RevocationList, file_stamp
from signing.truststore import TrustedKey, TrustStore

__all__ = [
    "MEMBER_URN",
    "CertificateTrustStore",
    "check_member_certificate",
    "check_validity",
    "load_ca_certificate",
    "load_certificates",
    "member_of",
]

log = logging.getLogger("signing.certificates")
MEMBER_URN = "urn:bus:member:"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file (a bundle), in file order."""
    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SigningError("key-error", f"cannot load certificates from {path}: {exc}") from exc
    return certificates


def load_ca_certificate(path: Path) -> x509.Certificate:
    """The bus CA certificate: self-signed, ``BasicConstraints(ca=True)``."""
    certificates = load_certificates(path)
    if len(certificates) != 1:
        raise SigningError("key-error", f"{path} must hold exactly one (CA) certificate")
    ca = certificates[0]
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        ca.verify_directly_issued_by(ca)
    except (x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature):
        raise SigningError("key-error", f"{path} is not a self-signed CA certificate") from None
    if not constraints.ca:
        raise SigningError("key-error", f"{path} is not a CA certificate")
    return ca


def member_of(certificate: x509.Certificate) -> str | None:
    """The member a certificate names (its ``urn:bus:member:`` SAN URI), if exactly one."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    members = [
        uri.removeprefix(MEMBER_URN)
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier)
        if uri.startswith(MEMBER_URN)
    ]
    return members[0] if len(members) == 1 else None


def check_member_certificate(
    certificate: x509.Certificate, ca: x509.Certificate, member: str
) -> PublicKey:
    """Raise ``CertificateUntrustedError`` unless ``certificate`` is the CA's, for ``member``.

    Validity in time and revocation are not checked here (they change; ``resolve`` checks them).
    """
    serial = f"{certificate.serial_number:X}"
    try:
        if certificate.issuer != ca.subject:
            raise ValueError("issuer is not the bus CA")
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise CertificateUntrustedError(
            "unknown-issuer", f"certificate {serial} for {member} is not issued by the bus CA"
        ) from None
    named = member_of(certificate)
    cn = [a.value for a in certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    if named != member or cn != [member]:
        raise CertificateUntrustedError(
            "wrong-member", f"certificate {serial} names {named!r}, not the member {member!r}"
        )
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise CertificateUntrustedError(
            "not-for-signing", f"certificate {serial} lacks basic constraints or key usage"
        ) from None
    public_key = certificate.public_key()
    supported = (
        isinstance(public_key, Ed25519PublicKey)
        or (
            isinstance(public_key, ec.EllipticCurvePublicKey)
            and isinstance(public_key.curve, ec.SECP256R1)
        )
        or (isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size >= MIN_RSA_BITS)
    )
    if constraints.ca or not usage.digital_signature or not supported:
        raise CertificateUntrustedError(
            "not-for-signing", f"certificate {serial} is not a member signing certificate"
        )
    return public_key  # type: ignore[return-value]


def check_validity(trusted: TrustedKey, when: dt.datetime) -> None:
    """Raise ``CertificateUntrustedError`` if the key's certificate is not valid at ``when``."""
    if trusted.not_before is not None and when < trusted.not_before:
        raise CertificateUntrustedError(
            "not-yet-valid",
            f"certificate {trusted.serial} of {trusted.member} is valid only from "
            f"{trusted.not_before.isoformat()}",
        )
    if trusted.not_after is not None and when > trusted.not_after:
        raise CertificateUntrustedError(
            "expired",
            f"certificate {trusted.serial} of {trusted.member} expired at "
            f"{trusted.not_after.isoformat()}",
        )


@dataclass
class _Loaded:
    """What one member's certificate file gave."""

    stamp: tuple[int, int, int] | None
    trusted: dict[str, list[TrustedKey]] = field(default_factory=dict)
    untrusted: dict[str, CertificateUntrustedError] = field(default_factory=dict)


def _load_member(member: str, path: Path, ca: x509.Certificate) -> _Loaded:
    loaded = _Loaded(file_stamp(path))
    for certificate in load_certificates(path):
        try:
            public_key = check_member_certificate(certificate, ca, member)
        except CertificateUntrustedError as exc:
            try:
                kid = key_id(member, certificate.public_key())  # type: ignore[arg-type]
            except (TypeError, ValueError):
                continue
            loaded.untrusted[kid] = exc
            log.warning("certificate not trusted: %s", exc.detail)
            continue
        kid = key_id(member, public_key)
        loaded.trusted.setdefault(kid, []).append(TrustedKey(kid, member, public_key, certificate))
    return loaded


class CertificateTrustStore:
    """Key ids resolved from member certificates of the bus CA (see the module docstring)."""

    def __init__(
        self,
        ca: x509.Certificate,
        members: Mapping[str, Path],
        crl: Path,
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
        reload_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ca = ca
        self._paths = dict(members)
        self._clock = clock
        self._reload_s = reload_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.revocations = RevocationList(crl, ca)
        self._loaded = {m: _load_member(m, p, ca) for m, p in self._paths.items()}
        self._index()
        self._checked = monotonic()

    @classmethod
    def from_files(
        cls, ca: Path, members: Mapping[str, Path], crl: Path, **kw: object
    ) -> CertificateTrustStore:
        return cls(load_ca_certificate(ca), members, crl, **kw)  # type: ignore[arg-type]

    def _index(self) -> None:
        trusted: dict[str, list[TrustedKey]] = {}
        untrusted: dict[str, CertificateUntrustedError] = {}
        for loaded in self._loaded.values():
            untrusted.update(loaded.untrusted)
            for kid, keys in loaded.trusted.items():
                trusted.setdefault(kid, []).extend(keys)
        self._trusted, self._untrusted = trusted, untrusted  # swapped whole: readers need no lock

    def reload(self) -> bool:
        """Re-read the certificate files and the CRL that changed; return whether any did."""
        with self._lock:
            self._checked = self._monotonic()
            changed = self.revocations.refresh(self._clock())
            members_changed = False
            for member, path in self._paths.items():
                if file_stamp(path) == self._loaded[member].stamp:
                    continue
                try:
                    self._loaded[member] = _load_member(member, path, self.ca)
                    members_changed = True
                except SigningError as exc:
                    log.warning("certificates of %s not reloaded: %s", member, exc.detail)
            if members_changed:
                self._index()
            return changed or members_changed

    def _maybe_reload(self) -> None:
        if self._monotonic() - self._checked >= self._reload_s:
            self.reload()

    def members(self) -> set[str]:
        """Members with a certificate that is valid now and not revoked."""
        self._maybe_reload()
        now = self._clock()
        members = set()
        for keys in self._trusted.values():
            for trusted in keys:
                assert trusted.certificate is not None
                if self.revocations.revoked_at(trusted.certificate.serial_number) is not None:
                    continue
                try:
                    check_validity(trusted, now)
                except CertificateUntrustedError:
                    continue
                members.add(trusted.member)
        return members

    def certificates(self, member: str) -> list[TrustedKey]:
        """The trusted certificates of ``member`` (for display), newest expiry first."""
        keys = [k for ks in self._trusted.values() for k in ks if k.member == member]
        return sorted(keys, key=lambda k: k.not_after or dt.datetime.max, reverse=True)

    def resolve(self, kid: str) -> TrustedKey:
        return self.resolve_at(kid, self._clock())

    def resolve_at(self, kid: str, when: dt.datetime) -> TrustedKey:
        """The key of ``kid`` if its certificate is trusted, unrevoked now and valid at ``when``."""
        self._maybe_reload()
        candidates = self._trusted.get(kid)
        if candidates is None and kid not in self._untrusted:
            self.reload()  # a certificate added by a rotation is found by its first signature
            candidates = self._trusted.get(kid)
        if candidates is None:
            if kid in self._untrusted:
                raise self._untrusted[kid]
            raise SigningError("unknown-key", f"key id {kid!r} is not in the trust store")
        if not self.ca.not_valid_before_utc <= when <= self.ca.not_valid_after_utc:
            raise CertificateUntrustedError(
                "expired" if when > self.ca.not_valid_after_utc else "not-yet-valid",
                f"the bus CA certificate is not valid at {when.isoformat()}",
            )
        refusal: CertificateUntrustedError | None = None
        for trusted in candidates:
            assert trusted.certificate is not None
            revoked_at = self.revocations.revoked_at(trusted.certificate.serial_number)
            if revoked_at is not None:
                refusal = CertificateRevokedError(
                    f"certificate {trusted.serial} of {trusted.member} was revoked at "
                    f"{revoked_at.isoformat()}"
                )
                continue
            try:
                check_validity(trusted, when)
            except CertificateUntrustedError as exc:
                refusal = refusal or exc
                continue
            return trusted
        assert refusal is not None
        raise refusal

    def at(self, when: dt.datetime) -> TrustStore:
        """This store as a ``TrustStore`` that checks validity at ``when`` (revocation: now)."""
        return _AtTime(self, when)


class _AtTime:
    def __init__(self, store: CertificateTrustStore, when: dt.datetime) -> None:
        self._store = store
        self._when = when

    def resolve(self, kid: str) -> TrustedKey:
        return self._store.resolve_at(kid, self._when)
