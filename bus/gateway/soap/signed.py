"""Signed SOAP requests at the gateway: whose they are, whether they are fresh, and only once.

``SignedRequests.check(raw, client=…, service=…)`` takes a request whose Body is XMLDSig-signed
and returns what was signed (``signing.xml.VerifiedSoap``: the signed Body and, if the request
has one, the signed ``BusContext`` header — the only parts to read), or refuses it:

* ``SignatureInvalid``: the signature does not verify with the key its id names in the trust
  store, is not the asking client's, or does not also sign a WS-Security ``wsu:Timestamp``
  with ``Created`` and ``Expires`` (reason ``no-timestamp``; ``signing.xml.SoapSigner`` signs
  one by default), or the request carries a ``BusContext`` header the signature does not
  cover (reason ``unsigned-context``: its purpose and user could have been changed on the way;
  ``SoapSigner`` signs it when present);
* ``Expired``, as ``Seal.verify`` decides for the JSON envelopes, with the node's
  ``trust.max_clock_skew_s``: ``Created`` later than now plus the skew (``issued-in-future``),
  ``Expires`` not after ``Created`` (``inverted``), ``Expires`` now or past (``expired``), and,
  since the client chooses ``Expires``, a timestamp valid longer than ``max_lifetime`` (default
  5 minutes, ``too-long``): the replay memory must not hold an entry for years;
* ``Replayed``: the same signed content (``VerifiedSoap.digest``: the Body, the Timestamp and
  the BusContext as signed, whatever the signature bytes) was received before, in the node's
  ``ReplayGuard`` (the one the JSON path uses), which remembers it until its ``Expires``.

The order matters: the signature first (a forged message must not reach the replay memory,
and neither must one with an unsigned ``BusContext``), then the time window (an expired
message is not remembered), then the replay memory. A signed request with no ``BusContext``
at all passes here (a ``GetResult`` needs none); the gateway refuses one that asks a service,
since its purpose and user would be unsigned (``bus.gateway.soap.endpoint``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from bus.core.errors import Expired, SignatureInvalid
from bus.core.replay import ReplayGuard
from signing import SigningError
from signing.xml import SoapTimestamp, SoapVerifier, VerifiedSoap

__all__ = ["MAX_LIFETIME", "SignedRequests", "check_window"]

MAX_LIFETIME = dt.timedelta(minutes=5)


def check_window(
    stamp: SoapTimestamp,
    now: dt.datetime,
    *,
    max_skew: dt.timedelta,
    max_lifetime: dt.timedelta = MAX_LIFETIME,
    client: str | None = None,
    service: str | None = None,
) -> None:
    """Raise ``Expired`` unless ``stamp`` holds at ``now`` (see the module docstring)."""
    ctx: dict[str, Any] = {"client": client, "service": service}
    if stamp.created > now + max_skew:
        raise Expired(
            "wsu:Timestamp created in the future (clock skew too large)",
            reason="issued-in-future", **ctx,
        )
    if stamp.expires <= stamp.created:
        raise Expired("wsu:Timestamp expires before it was created", reason="inverted", **ctx)
    if stamp.expires <= now:
        raise Expired(f"wsu:Timestamp expired at {stamp.expires.isoformat()}", **ctx)
    if stamp.expires - stamp.created > max_lifetime:
        raise Expired(
            f"wsu:Timestamp valid for longer than {max_lifetime.total_seconds():g} s",
            reason="too-long", **ctx,
        )


class SignedRequests:
    """The checks of signed SOAP requests of one gateway (see the module docstring)."""

    def __init__(
        self,
        verifier: SoapVerifier,
        replay: ReplayGuard,
        *,
        clock: Callable[[], dt.datetime],
        max_skew: dt.timedelta,
        max_lifetime: dt.timedelta = MAX_LIFETIME,
    ) -> None:
        self._verifier = verifier
        self._replay = replay
        self._clock = clock
        self._max_skew = max_skew
        self._max_lifetime = max_lifetime

    def check(self, raw: bytes, *, client: str, service: str) -> VerifiedSoap:
        """What ``raw`` signed, signed by ``client``, fresh, and not seen before."""
        try:
            verified = self._verifier.verify(raw, signer=client)
        except SigningError as exc:
            raise SignatureInvalid(
                f"XML signature: {exc.detail}", reason=exc.reason, client=client, service=service
            ) from None
        stamp = verified.timestamp
        if stamp is None:
            raise SignatureInvalid(
                "a signed SOAP request must also sign a wsu:Timestamp with Created and Expires "
                "(WS-Security), in the wsse:Security header that holds the signature",
                reason="no-timestamp", client=client, service=service,
            )
        if verified.unsigned_context:
            raise SignatureInvalid(
                "the BusContext header of a signed SOAP request must be signed with its Body",
                reason="unsigned-context", client=client, service=service,
            )
        check_window(stamp, self._clock(), max_skew=self._max_skew,
                     max_lifetime=self._max_lifetime, client=client, service=service)
        self._replay.admit_once(
            "soap:" + verified.digest, stamp.expires, client=client, service=service,
            what="this signed SOAP request (same signed Body, Timestamp and BusContext)",
        )
        return verified
