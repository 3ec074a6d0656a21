"""``CitizenTokens``: the claims an ID token must carry, the keys it may be signed with, and how
the identity provider's JWKS is read (a file; a URL with refresh, rotation and outages)."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from bus.config.citizens import CitizenSettings
from bus.core.errors import BusUnavailable, Unauthenticated
from bus.policy.citizen_token import UNKNOWN_KEY_REFETCH_S, CitizenTokens
from demo.identity import AUDIENCE, DemoIdentityProvider

PINFL = "31505861234567"
ISSUER = "https://id.example.uz"


@pytest.fixture
def idp() -> DemoIdentityProvider:
    return DemoIdentityProvider(ISSUER)


def _file(tmp_path: Path, jwks: dict[str, Any]) -> CitizenTokens:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    return CitizenTokens(CitizenSettings(issuer=ISSUER, audience=AUDIENCE, jwks_file=path))


def _reason(tokens: CitizenTokens, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        tokens.verify(token)
    return caught.value.reason


def test_the_claims_an_id_token_must_carry(tmp_path: Path, idp: DemoIdentityProvider) -> None:
    tokens = _file(tmp_path, idp.jwks())
    assert tokens.verify(idp.id_token(PINFL)).pinfl == PINFL
    assert tokens.verify(idp.id_token(PINFL, aud=[AUDIENCE, "other"], azp=AUDIENCE)).pinfl
    assert _reason(tokens, idp.id_token(PINFL, aud=[AUDIENCE, "x"], azp="x")) == "token-audience"
    assert _reason(tokens, idp.id_token(PINFL, aud=["x"])) == "token-audience"
    later = time.time() + 3600
    assert _reason(tokens, idp.id_token(PINFL, iat=int(later))) == "token-not-yet-valid"
    assert _reason(tokens, idp.id_token(PINFL, nbf=int(later))) == "token-not-yet-valid"
    # within the leeway (30 s) an expired token still passes; beyond it, never
    assert tokens.verify(idp.id_token(PINFL, now=time.time() - 310)).pinfl == PINFL
    assert _reason(tokens, idp.id_token(PINFL, now=time.time() - 340)) == "token-expired"
    assert _reason(tokens, idp.id_token(PINFL, exp=None)) == "token-expired"
    assert _reason(tokens, idp.id_token(PINFL, pinfl=None)) == "token-subject"
    assert _reason(tokens, "x" * 20_000 + "..") == "token-malformed"
    assert _reason(tokens, "eyJub3QiOiAianNvbiJ9") == "token-malformed"  # no dots


def test_the_header_may_not_bring_its_own_key(tmp_path: Path, idp: DemoIdentityProvider) -> None:
    tokens = _file(tmp_path, idp.jwks())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, "pinfl": PINFL}
    mine = ECKey.generate_key("P-256")
    embedded = jwt.encode({"alg": "ES256", "kid": idp.key.kid,
                           "jwk": mine.as_dict(private=False)}, claims, mine)
    assert _reason(tokens, embedded) == "token-malformed"
    rsa = RSAKey.generate_key(2048, parameters={"kid": idp.key.kid})
    assert _reason(tokens, jwt.encode({"alg": "RS512", "kid": idp.key.kid}, claims, rsa,
                                     algorithms=["RS512"])) == (
        "token-algorithm")  # RS512 is not among citizens.algorithms by default


def test_a_token_without_kid_only_with_a_single_key(
    tmp_path: Path, idp: DemoIdentityProvider
) -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, "pinfl": PINFL}
    no_kid = jwt.encode({"alg": "ES256"}, claims, idp.key)
    assert _file(tmp_path, idp.jwks()).verify(no_kid).pinfl == PINFL
    two = {"keys": [*idp.jwks()["keys"], ECKey.generate_key("P-256", parameters={"kid": "b"})
                    .as_dict(private=False)]}
    assert _reason(_file(tmp_path, two), no_kid) == "token-unknown-key"


def test_a_jwks_with_private_keys_is_refused(tmp_path: Path, idp: DemoIdentityProvider) -> None:
    with pytest.raises(BusUnavailable, match="private"):
        _file(tmp_path, {"keys": [idp.key.as_dict(private=True)]})


class _Provider:
    """The identity provider's JWKS over a mock transport, counting reads."""

    def __init__(self, idp: DemoIdentityProvider) -> None:
        self.idp = idp
        self.reads = 0
        self.down = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.reads += 1
        if self.down:
            return httpx.Response(503)
        return httpx.Response(200, json=self.idp.jwks())


def test_keys_from_a_url_are_refreshed_and_follow_a_rotation(idp: DemoIdentityProvider) -> None:
    provider = _Provider(idp)
    now = [1000.0]
    settings = CitizenSettings(issuer=ISSUER, audience=AUDIENCE,
                               jwks_url=f"{ISSUER}/jwks.json", jwks_refresh_s=300)
    with httpx.Client(transport=httpx.MockTransport(provider.handle)) as http:
        tokens = CitizenTokens(settings, http=http, monotonic=lambda: now[0],
                               clock=lambda: dt.datetime.now(dt.UTC))
        assert tokens.verify(idp.id_token(PINFL)).pinfl == PINFL
        tokens.verify(idp.id_token(PINFL))
        assert provider.reads == 1  # read once, then kept
        old = idp.key
        idp.key = ECKey.generate_key("P-256", parameters={"kid": "rotated"})
        rotated = idp.id_token(PINFL)
        # a key not in the set read 0 s ago: not read again yet (garbage tokens cannot hammer it)
        assert _reason(tokens, rotated) == "token-unknown-key" and provider.reads == 1
        now[0] += UNKNOWN_KEY_REFETCH_S
        assert tokens.verify(rotated).pinfl == PINFL and provider.reads == 2
        assert _reason(tokens, idp.id_token(PINFL, key=old)) == "token-unknown-key"
        # the provider down: the keys read before are kept; refreshed once it is back
        provider.down = True
        now[0] += 300
        assert tokens.verify(rotated).pinfl == PINFL and provider.reads == 3
        provider.down = False
        now[0] += 300
        tokens.verify(rotated)
        assert provider.reads == 4


def test_no_keys_at_all_is_unavailable_not_a_refusal(idp: DemoIdentityProvider) -> None:
    provider = _Provider(idp)
    provider.down = True
    settings = CitizenSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=f"{ISSUER}/jwks.json")
    transport = httpx.MockTransport(provider.handle)
    with httpx.Client(transport=transport) as http, pytest.raises(BusUnavailable):
        CitizenTokens(settings, http=http).verify(idp.id_token(PINFL))
