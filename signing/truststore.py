"""The trust store: which key ids the bus trusts, and which member each belongs to.

``TrustStore`` is the seam: the skeleton's ``StaticTrustStore`` is built from the members'
public keys in the configuration; a certificate-backed store (bus CA, revocation) plugs in behind
the same ``resolve``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from signing.errors import SigningError
from signing.keys import key_id, load_public_key

__all__ = ["StaticTrustStore", "TrustStore", "TrustedKey"]


@dataclass(frozen=True, slots=True)
class TrustedKey:
    kid: str
    member: str
    public_key: Ed25519PublicKey


class TrustStore(Protocol):
    def resolve(self, kid: str) -> TrustedKey:
        """Return the trusted key for ``kid`` or raise ``SigningError('unknown-key', …)``."""
        ...


class StaticTrustStore:
    """A fixed set of trusted public keys, keyed by key id."""

    def __init__(self, keys: dict[str, TrustedKey] | None = None) -> None:
        self._keys: dict[str, TrustedKey] = dict(keys or {})

    def add(self, member: str, public_key: Ed25519PublicKey) -> TrustedKey:
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
