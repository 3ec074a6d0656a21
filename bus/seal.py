"""Sealing envelopes: sign last on the way out, verify first on the way in.

``Seal`` holds the signers of the members this node hosts (keys loaded once) and a verifier over
the trust store. ``verify`` checks, in order: a signature is present and well formed, its key is
trusted, it verifies over the canonical envelope, the key belongs to the member who must sign
this kind of envelope, and the time window (with ``max_skew``) holds. Each refusal is a typed
error with a bounded ``reason``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from bus.envelope import Envelope, utcnow
from bus.errors import BusUnavailable, Expired, SignatureInvalid
from signing import JwsVerifier, Signer, SigningError, TrustStore

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
        self._verifier = JwsVerifier(trust)
        self.clock = clock
        self.max_skew = max_skew

    def hosts(self, member: str) -> bool:
        return member in self._signers

    def sign(self, envelope: Envelope) -> Envelope:
        """Sign ``envelope`` as the member that must sign it (client or provider)."""
        signer = self._signers.get(envelope.signer)
        if signer is None:
            raise BusUnavailable(f"this node holds no key for member {envelope.signer!r}")
        return envelope.with_signature(signer.sign(envelope.signing_input()))

    def verify(self, envelope: Envelope) -> Envelope:
        """Return ``envelope`` if its signature, signer and time window hold; raise otherwise."""
        ctx: dict[str, Any] = {
            "message_id": envelope.id,
            "client": envelope.client,
            "service": envelope.service,
        }
        if not envelope.signature:
            raise SignatureInvalid("envelope is not signed", reason="missing", **ctx)
        try:
            signed_bytes = envelope.signing_input()
        except ValueError:  # rfc8785 has no canonical form for it (e.g. an integer over 2**53)
            raise SignatureInvalid(
                "envelope has no canonical JSON form", reason="malformed", **ctx
            ) from None
        try:
            trusted = self._verifier.verify(signed_bytes, envelope.signature)
        except SigningError as exc:
            raise SignatureInvalid(exc.detail, reason=exc.reason, **ctx) from None
        if trusted.member != envelope.signer:
            raise SignatureInvalid(
                f"signed by {trusted.member!r} but a {envelope.kind} must be signed by "
                f"{envelope.signer!r}",
                reason="wrong-signer",
                **ctx,
            )
        now = self.clock()
        if envelope.issued_at > now + self.max_skew:
            raise Expired("envelope issued in the future (clock skew too large)", **ctx)
        if envelope.expires_at <= envelope.issued_at:
            raise Expired("envelope expires before it was issued", **ctx)
        if envelope.expires_at <= now:
            raise Expired(f"envelope expired at {envelope.expires_at.isoformat()}", **ctx)
        return envelope
