"""A node's trust, from its settings: the trust store, and the signers of the members it hosts.

A member named with ``public_key:`` is trusted through that Ed25519 key (``StaticTrustStore``);
one named with ``certificate:`` through its certificates from the bus CA
(``CertificateTrustStore`` over ``trust.ca`` and ``trust.crl``). A deployment may mix both while
it migrates. ``NodeTrust`` sends each key id to the store of the member the id names
(``<member>#…``), so a key can only ever be resolved through the way of trust configured for
its member.

Hosted members' private keys are ``<keys_dir>/<member>.key``, decrypted with
``node.key_passphrase`` when encrypted. A node refuses to start when a hosted member's own key
is not trusted (unknown, revoked, expired): every signature it made would be refused. Signers
follow their key files (``signing.rotation.KeyFileSigner``, checked every second or every
``trust.reload_s`` if shorter): after ``keys rotate`` the new key signs from then on, once the
trust store can resolve it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from bus.config.settings import BusSettings
from signing import (
    CertificateTrustStore,
    KeyFileSigner,
    Signer,
    SigningError,
    StaticTrustStore,
    TrustedKey,
    TrustStore,
)

__all__ = ["NodeTrust", "load_signers", "load_trust"]


class NodeTrust:
    """The trust store of a node (see the module docstring)."""

    def __init__(
        self,
        *,
        static: StaticTrustStore | None = None,
        certified: CertificateTrustStore | None = None,
        certified_members: frozenset[str] = frozenset(),
    ) -> None:
        self.static = static
        self.certified = certified
        self._certified_members = certified_members

    def _store_for(self, kid: str) -> StaticTrustStore | CertificateTrustStore:
        member = kid.partition("#")[0]
        if member in self._certified_members and self.certified is not None:
            return self.certified
        if self.static is not None:
            return self.static
        raise SigningError("unknown-key", f"key id {kid!r} is not in the trust store")

    def resolve(self, kid: str) -> TrustedKey:
        return self._store_for(kid).resolve(kid)

    def resolve_at(self, kid: str, when: dt.datetime) -> TrustedKey:
        """Certificates valid at ``when`` (revocation: now); bare keys have no validity."""
        store = self._store_for(kid)
        if isinstance(store, CertificateTrustStore):
            return store.resolve_at(kid, when)
        return store.resolve(kid)

    def at(self, when: dt.datetime) -> TrustStore:
        """This trust as a ``TrustStore`` checking certificate validity at ``when``."""
        return _At(self, when)

    def members(self) -> set[str]:
        """Members with a key trusted now (certificates: valid and not revoked)."""
        members = self.static.members() if self.static is not None else set()
        if self.certified is not None:
            members |= self.certified.members()
        return members

    def readiness(self, configured: set[str], hosted: set[str]) -> str:
        """The node's ``trust-store`` readiness check: raise ``LookupError`` when a member this
        node hosts has no trusted key (it could sign nothing anyone accepts); another member
        without one (its certificate revoked, say) only shows in the detail, since this node
        works on for everyone else and refuses that member's messages as they come."""
        trusted = self.members()
        mine = sorted(hosted - trusted)
        if mine:
            raise LookupError(f"no trusted key for hosted {', '.join(mine)}")
        others = sorted(configured - trusted)
        detail = f"{len(configured & trusted)} members"
        return f"{detail}; not trusted: {', '.join(others)}" if others else detail

    def reload(self) -> bool:
        """Re-read certificate and CRL files that changed (the stores also do it by themselves)."""
        return self.certified.reload() if self.certified is not None else False


class _At:
    def __init__(self, trust: NodeTrust, when: dt.datetime) -> None:
        self._trust, self._when = trust, when

    def resolve(self, kid: str) -> TrustedKey:
        return self._trust.resolve_at(kid, self._when)


def load_trust(settings: BusSettings, clock: Callable[[], dt.datetime]) -> NodeTrust:
    keys = {m: s.public_key for m, s in settings.members.items() if s.public_key is not None}
    certificates = {
        m: s.certificate for m, s in settings.members.items() if s.certificate is not None
    }
    certified = None
    if certificates:
        if settings.trust.ca is None or settings.trust.crl is None:
            raise SigningError("key-error", "members name certificates but trust.ca/crl are unset")
        certified = CertificateTrustStore.from_files(
            settings.trust.ca,
            certificates,
            settings.trust.crl,
            clock=clock,
            reload_s=settings.trust.reload_s,
        )
    return NodeTrust(
        static=StaticTrustStore.from_files(keys) if keys else None,
        certified=certified,
        certified_members=frozenset(certificates),
    )


def load_signers(settings: BusSettings, trust: TrustStore) -> dict[str, Signer]:
    """The signers of the hosted members; refuses a member whose own key is not trusted now."""
    passphrase = settings.node.key_passphrase
    secret = passphrase.get_secret_value().encode() if passphrase is not None else None
    check_s = min(1.0, settings.trust.reload_s)

    def trusted(kid: str) -> bool:
        try:
            trust.resolve(kid)
        except SigningError:
            return False
        return True

    signers: dict[str, Signer] = {}
    for member in settings.node.hosts:
        path = settings.node.keys_dir / f"{member}.key"
        signer = KeyFileSigner(member, path, secret, check_s=check_s, accept=trusted)
        _check_own_key(trust, signer)
        signers[member] = signer
    return signers


def _check_own_key(trust: TrustStore, signer: Signer) -> None:
    try:
        trusted = trust.resolve(signer.kid)
    except SigningError as exc:
        raise SigningError(
            exc.reason,
            f"the key of hosted member {signer.member!r} ({signer.kid}) is not trusted: "
            f"{exc.detail}",
        ) from None
    if trusted.member != signer.member:  # pragma: no cover - kids name their member
        raise SigningError("key-error", f"{signer.kid} resolves to {trusted.member!r}")
