"""Who a citizen is, from an OpenID Connect ID token of the national identity provider.

``CitizenTokens.verify(token)`` (joserfc) accepts a compact JWS (RFC 7515) only — no JWE, no
``alg: none``, no HMAC: the algorithm must be one of ``citizens.algorithms`` — signed by a key
of the provider's JWKS named by its ``kid`` (a JWKS of one key may be used without one), with
``iss`` equal to ``citizens.issuer``, ``aud`` naming ``citizens.audience`` (and ``azp``, if
present, equal to it), ``exp`` in the future and ``iat``/``nbf`` not, within
``citizens.leeway_s``, and a valid PINFL in the ``citizens.subject_claim`` claim. The person
is that claim, never anything the request says. Every refusal is ``Unauthenticated`` with a
bounded ``reason``: token-malformed, token-algorithm, token-unknown-key, token-signature,
token-expired, token-not-yet-valid, token-issuer, token-audience, token-subject,
idp-unavailable (the JWKS could not be read).

The keys come from ``citizens.jwks_file`` (read once) or ``citizens.jwks_url`` (read at first
use, again every ``jwks_refresh_s``, and when a token names a key not in it — at most every
``UNKNOWN_KEY_REFETCH_S`` — so the provider's key rotation needs no restart). The HTTP client
is passed in (``httpx.Client``), so tests and the demo use a local provider.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bus.config.citizens import CitizenSettings
from bus.core.errors import BusUnavailable, Unauthenticated
from schemas.identifiers import validate_pinfl

__all__ = ["UNKNOWN_KEY_REFETCH_S", "Citizen", "CitizenTokens", "looks_like_id_token"]

log = logging.getLogger("bus.citizens")
UNKNOWN_KEY_REFETCH_S = 10.0
_MAX_TOKEN_BYTES = 16_384


@dataclass(frozen=True)
class Citizen:
    """A person the identity provider vouched for."""

    pinfl: str
    issuer: str


def looks_like_id_token(bearer: str) -> bool:
    """A compact JWS has three dot-separated parts; member API tokens have no dot."""
    return bearer.count(".") == 2


def _b64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class CitizenTokens:
    def __init__(
        self,
        settings: CitizenSettings,
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._http = http
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        if settings.jwks_file is not None:
            self._keys = self._parse(settings.jwks_file.read_bytes(), str(settings.jwks_file))

    def verify(self, token: str) -> Citizen:
        """The citizen ``token`` names, or ``Unauthenticated`` (see the module docstring)."""
        header = self._header(token)
        key = self._key(header.get("kid"))
        try:
            decoded = jwt.decode(token, key, algorithms=self.settings.algorithms)
        except JoseError as exc:
            raise Unauthenticated(
                f"the ID token's signature does not verify ({exc.error})", reason="token-signature"
            ) from None
        return self._check_claims(decoded.claims)

    # -- the token's parts ----------------------------------------------------------------------

    def _header(self, token: str) -> dict[str, Any]:
        if len(token) > _MAX_TOKEN_BYTES or not looks_like_id_token(token):
            raise Unauthenticated("not an ID token (compact JWS)", reason="token-malformed")
        try:
            header = _b64json(token.split(".", 1)[0])
        except ValueError:
            header = None
        if not isinstance(header, dict):
            raise Unauthenticated("the ID token's header is not a JSON object",
                                  reason="token-malformed")
        alg = header.get("alg")
        if alg not in self.settings.algorithms:
            raise Unauthenticated(
                f"ID tokens signed with {str(alg)[:20]!r} are not accepted "
                f"(accepted: {', '.join(self.settings.algorithms)})",
                reason="token-algorithm",
            )
        if "crit" in header or "jku" in header or "jwk" in header or "x5u" in header:
            raise Unauthenticated(
                "the ID token names its own key or critical extensions", reason="token-malformed"
            )
        return header

    def _check_claims(self, claims: dict[str, Any]) -> Citizen:
        s = self.settings
        now = self._clock().timestamp()
        if claims.get("iss") != s.issuer:
            raise Unauthenticated("the ID token is from another issuer", reason="token-issuer")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if s.audience not in audiences or claims.get("azp", s.audience) != s.audience:
            raise Unauthenticated("the ID token is for another audience", reason="token-audience")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise Unauthenticated("the ID token has no expiry", reason="token-expired")
        if exp + s.leeway_s <= now:
            raise Unauthenticated("the ID token has expired", reason="token-expired")
        for name in ("iat", "nbf"):
            value = claims.get(name)
            if value is not None and (not isinstance(value, int | float) or
                                      value - s.leeway_s > now):
                raise Unauthenticated(
                    f"the ID token's {name} is in the future", reason="token-not-yet-valid"
                )
        try:
            pinfl = validate_pinfl(str(claims.get(s.subject_claim, "")))
        except ValueError:
            raise Unauthenticated(
                f"the ID token's {s.subject_claim!r} claim is not a valid PINFL",
                reason="token-subject",
            ) from None
        return Citizen(pinfl=pinfl, issuer=s.issuer)

    # -- the provider's keys --------------------------------------------------------------------

    def _key(self, kid: object) -> KeySet:
        keys = self._keyset(refresh=False)
        found = self._pick(keys, kid)
        if found is None and self.settings.jwks_url is not None:
            found = self._pick(self._keyset(refresh=True), kid)
        if found is None:
            raise Unauthenticated(
                "the ID token is signed with a key the identity provider does not publish",
                reason="token-unknown-key",
            )
        return found

    @staticmethod
    def _pick(keys: KeySet, kid: object) -> KeySet | None:
        if kid is None:
            return keys if len(keys.keys) == 1 else None
        chosen = [k for k in keys.keys if k.kid == kid]
        return KeySet(chosen) if chosen else None

    def _keyset(self, *, refresh: bool) -> KeySet:
        url = self.settings.jwks_url
        with self._lock:
            if url is None:
                assert self._keys is not None
                return self._keys
            age = self._monotonic() - self._fetched_at
            due = self._keys is None or age >= self.settings.jwks_refresh_s
            if refresh and age >= UNKNOWN_KEY_REFETCH_S:
                due = True
            if due:
                try:
                    self._keys = self._fetch(url)
                    self._fetched_at = self._monotonic()
                except BusUnavailable:
                    if self._keys is None:
                        raise
                    log.warning("identity provider's JWKS not refreshed; the old keys kept")
            assert self._keys is not None
            return self._keys

    def _fetch(self, url: str) -> KeySet:
        client = self._http or httpx.Client(timeout=5)
        try:
            response = client.get(url, follow_redirects=False)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("identity provider's JWKS unavailable", extra={"bus": {"reason": str(exc)}})
            raise BusUnavailable("the identity provider's keys cannot be read now") from None
        finally:
            if self._http is None:
                client.close()
        return self._parse(response.content, url)

    @staticmethod
    def _parse(data: bytes, where: str) -> KeySet:
        try:
            keys = KeySet.import_key_set(json.loads(data))
        except (ValueError, TypeError, KeyError, JoseError) as exc:
            raise BusUnavailable(f"the identity provider's JWKS ({where}) is not valid: {exc}") \
                from None
        private = [k.kid for k in keys.keys if k.is_private]
        if private:
            raise BusUnavailable(f"the JWKS {where} holds private keys; publish public ones only")
        return keys
