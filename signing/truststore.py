"""The trust store: which key ids the bus trusts, and which member each belongs to.

``TrustStore`` is the seam. ``StaticTrustStore`` is built from the members' public keys in the
configuration; ``signing.certificates.CertificateTrustStore`` (bus CA, revocation list) resolves
key ids from member certificates behind the same ``resolve``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509

from signing.errors import SigningError
from signing.keys import PublicKey, key_id, load_public_key

__all__ = ["StaticTrustStore", "TrustStore", "TrustedKey"]


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A key the bus trusts, the member it belongs to and, if certified, its certificate."""

    kid: str
    member: str
    public_key: PublicKey
    certificate: x509.Certificate | None = None

    @property
    def not_before(self) -> dt.datetime | None:
        return self.certificate.not_valid_before_utc if self.certificate else None

    @property
    def not_after(self) -> dt.datetime | None:
        return self.certificate.not_valid_after_utc if self.certificate else None

    @property
    def serial(self) -> str | None:
        """The certificate's serial number in hex, as ``keys list`` shows it."""
        return f"{self.certificate.serial_number:X}" if self.certificate else None


class TrustStore(Protocol):
    def resolve(self, kid: str) -> TrustedKey:
        """Return the trusted key for ``kid`` or raise ``SigningError('unknown-key', …)``."""
        ...


class StaticTrustStore:
    """A fixed set of trusted public keys, keyed by key id."""

    def __init__(self, keys: dict[str, TrustedKey] | None = None) -> None:
        self._keys: dict[str, TrustedKey] = dict(keys or {})

    def add(self, member: str, public_key: PublicKey) -> TrustedKey:
        trusted = TrustedKey(key_id(member, public_key), member, public_key)
        self._keys[trusted.kid] = trusted
        return trusted

    @classmethod
    def from_files(cls, public_keys: dict[str, Path]) -> StaticTrustStore:
        store = cls()
        for member, path in public_keys.items():
            store.add(member, load_public_key(path))
        return store

    def resolve(self, kid: str) -> TrustedKey:
        try:
            return self._keys[kid]
        except KeyError:
            raise SigningError("unknown-key", f"key id {kid!r} is not in the trust store") from None

    def members(self) -> set[str]:
        return {k.member for k in self._keys.values()}
