"""Sealing envelopes: sign last on the way out, verify first on the way in.

``Seal`` holds the signers of the members this node hosts (keys loaded once) and a verifier over
the trust store. ``verify`` checks, in order: a signature is present and well formed, its key is
trusted (for a certificate: issued by the bus CA, not revoked, valid now), it verifies over the
canonical envelope, the key belongs to the member who must sign this kind of envelope, a
certificate was valid when the envelope was issued, and the time window (with ``max_skew``)
holds. Each refusal is a typed error with a bounded ``reason``: ``SignatureInvalid``,
``CertificateUntrusted``, ``CertificateRevoked``, ``Expired``. Replays are refused next to it
(``bus.core.replay``), by the workers and the exchanger, which know where a message came from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from bus.core.envelope import Envelope, utcnow
from bus.core.errors import (
    BusUnavailable,
    CertificateUntrusted,
    Expired,
    SignatureInvalid,
    from_code,
)
from signing import (
    JwsVerifier,
    Signer,
    SigningError,
    TrustedKey,
    TrustStore,
)

__all__ = ["Clock", "Seal"]

Clock = Callable[[], dt.datetime]


class Seal:
    def __init__(
        self,
        signers: Mapping[str, Signer],
        trust: TrustStore,
        *,
        clock: Clock = utcnow,
        max_skew: dt.timedelta = dt.timedelta(seconds=30),
    ) -> None:
        self._signers = signers
        self.trust = trust
        self._verifier = JwsVerifier(trust)
        self.clock = clock
        self.max_skew = max_skew

    def hosts(self, member: str) -> bool:
        return member in self._signers

    def sign(self, envelope: Envelope) -> Envelope:
        """Sign ``envelope`` as the member that must sign it (client or provider)."""
        return envelope.with_signature(
            self.sign_detached(envelope.signer, envelope.signing_input())
        )

    def sign_detached(self, member: str, payload: bytes) -> str:
        """A detached JWS over ``payload`` by ``member`` (hosted here): for bytes that are not an
        envelope, such as a callback's body."""
        signer = self._signers.get(member)
        if signer is None:
            raise BusUnavailable(f"this node holds no key for member {member!r}")
        return signer.sign(payload)

    def verify(self, envelope: Envelope) -> Envelope:
        """Return ``envelope`` if its signature, signer and time window hold; raise otherwise."""
        trusted = self._check_seal(envelope, self._verifier)
        ctx = _ctx(envelope)
        now = self.clock()
        begins, ends = trusted.not_before, trusted.not_after
        if begins and ends and not begins - self.max_skew <= envelope.issued_at <= ends:
            raise CertificateUntrusted(
                f"issued at {envelope.issued_at.isoformat()}, outside the validity of "
                f"certificate {trusted.serial} of {trusted.member}",
                reason="not-valid-when-signed",
                **ctx,
            )
        if envelope.issued_at > now + self.max_skew:
            raise Expired(
                "envelope issued in the future (clock skew too large)",
                reason="issued-in-future",
                **ctx,
            )
        if envelope.expires_at <= envelope.issued_at:
            raise Expired("envelope expires before it was issued", reason="inverted", **ctx)
        if envelope.expires_at <= now:
            raise Expired(f"envelope expired at {envelope.expires_at.isoformat()}", **ctx)
        return envelope

    def verify_issued(self, envelope: Envelope) -> TrustedKey:
        """Whether a saved envelope still stands as signed: signature and signer as ``verify``,
        the certificate valid when the envelope was issued and not revoked now; not its time
        window (a document outlives its envelope's deadline). Returns the signer's key."""
        at = getattr(self.trust, "at", None)
        trust = at(envelope.issued_at) if callable(at) else self.trust
        return self._check_seal(envelope, JwsVerifier(trust))

    def _check_seal(self, envelope: Envelope, verifier: JwsVerifier) -> TrustedKey:
        ctx = _ctx(envelope)
        if not envelope.signature:
            raise SignatureInvalid("envelope is not signed", reason="missing", **ctx)
        try:
            signed_bytes = envelope.signing_input()
        except ValueError:  # rfc8785 has no canonical form for it (e.g. an integer over 2**53)
            raise SignatureInvalid(
                "envelope has no canonical JSON form", reason="malformed", **ctx
            ) from None
        try:
            trusted = verifier.verify(signed_bytes, envelope.signature)
        except SigningError as exc:  # its code names the bus error it becomes
            raise from_code(exc.code, exc.detail, reason=exc.reason, **ctx) from None
        if trusted.member != envelope.signer:
            raise SignatureInvalid(
                f"signed by {trusted.member!r} but a {envelope.kind} must be signed by "
                f"{envelope.signer!r}",
                reason="wrong-signer",
                **ctx,
            )
        return trusted


def _ctx(envelope: Envelope) -> dict[str, Any]:
    return {"message_id": envelope.id, "client": envelope.client, "service": envelope.service}
