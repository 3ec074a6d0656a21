"""The bus CA's certificate revocation list (CRL): building it, and checking serials against it.

``RevocationList`` holds the CRL a node loaded, verified against the CA certificate (issuer and
signature); ``refresh`` re-reads the file when it changed (mtime, size or inode), so a node picks
up a new revocation without a restart. A CRL that does not verify is refused: at load an error,
on refresh the previous list stays in force and a warning is logged; so is one whose CRL number
is lower than the one in force (an old list would un-revoke). A CRL past its ``next_update`` is
still used (refusing every signature because the operator was late would stop the bus) and
logged as stale on each refresh.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signing.errors import SigningError
from signing.files import write_private

__all__ = ["RevocationList", "Revoked", "build_crl", "file_stamp", "write_crl"]

log = logging.getLogger("signing.revocation")


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells that a file changed: (mtime ns, size, inode); None if it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass(frozen=True, slots=True)
class Revoked:
    serial: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


def build_crl(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_certificate: x509.Certificate,
    revoked: Iterable[Revoked],
    *,
    number: int,
    now: dt.datetime,
    next_update: dt.datetime,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_certificate.subject)
        .last_update(now)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for entry in revoked:
        item = (
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at)
        )
        if entry.reason is not x509.ReasonFlags.unspecified:
            item = item.add_extension(x509.CRLReason(entry.reason), critical=False)
        builder = builder.add_revoked_certificate(item.build())
    return builder.sign(ca_key, hashes.SHA256())


def write_crl(path: Path, crl: x509.CertificateRevocationList) -> Path:
    """Write the CRL as PEM, replacing the file atomically (readers never see half a CRL)."""
    return write_private(path, crl.public_bytes(serialization.Encoding.PEM))


def _load(path: Path, ca: x509.Certificate) -> x509.CertificateRevocationList:
    try:
        crl = x509.load_pem_x509_crl(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SigningError("key-error", f"cannot load revocation list {path}: {exc}") from exc
    if crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
        raise SigningError("key-error", f"revocation list {path} is not signed by the bus CA")
    return crl


def _number(crl: x509.CertificateRevocationList) -> int | None:
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        return None


class RevocationList:
    """A CRL file of the bus CA, verified, with serial look-ups (see the module docstring)."""

    def __init__(self, path: Path, ca: x509.Certificate) -> None:
        self.path = path
        self._ca = ca
        self._stamp = file_stamp(path)
        self._crl = _load(path, ca)
        self._revoked = self._index(self._crl)

    @staticmethod
    def _index(crl: x509.CertificateRevocationList) -> dict[int, dt.datetime]:
        return {r.serial_number: r.revocation_date_utc for r in crl}

    @property
    def number(self) -> int | None:
        return _number(self._crl)

    @property
    def next_update(self) -> dt.datetime | None:
        return self._crl.next_update_utc

    def revoked_at(self, serial: int) -> dt.datetime | None:
        """When the certificate with ``serial`` was revoked, or None if it is not revoked."""
        return self._revoked.get(serial)

    def refresh(self, now: dt.datetime | None = None) -> bool:
        """Reload the file if it changed; return whether a new list is now in force."""
        stamp = file_stamp(self.path)
        if stamp == self._stamp:
            return False
        try:
            crl = _load(self.path, self._ca)
        except SigningError as exc:
            log.warning("revocation list not reloaded, the previous one stays: %s", exc.detail)
            return False
        number = _number(crl)
        if self.number is not None and (number is None or number < self.number):
            # An older list, validly signed, would un-revoke what was revoked since: refused.
            log.warning(
                "revocation list not reloaded: number %s is older than %s in force",
                number,
                self.number,
            )
            self._stamp = stamp
            return False
        self._crl, self._revoked, self._stamp = crl, self._index(crl), stamp
        if now is not None and self.next_update is not None and self.next_update < now:
            log.warning(
                "revocation list %s is stale (next update was %s)",
                self.path,
                self.next_update.isoformat(),
            )
        return True
