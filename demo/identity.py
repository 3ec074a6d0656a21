"""A stand-in for the national identity provider (OpenID Connect), for the demo and the tests.

It serves ``/.well-known/openid-configuration`` (issuer, ``jwks_uri``, ES256) and its JWKS at
``/jwks.json``, and mints ID tokens for a demo person (``id_token``): signed ES256 with its key,
``iss`` its URL, ``aud`` the bus's client id, the person's PINFL in the ``pinfl`` claim. A real
provider authenticates the person first; this one signs whatever it is asked to, so it only
ever runs on loopback beside the demo. ``foreign_key`` is a key of nobody's, for tests of a
token signed by a key the provider does not publish.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey

__all__ = ["AUDIENCE", "DemoIdentityProvider", "foreign_key"]

AUDIENCE = "interagency-bus"  # the bus's client id at the demo identity provider


class DemoIdentityProvider:
    def __init__(self, issuer: str = "http://127.0.0.1") -> None:
        self.issuer = issuer  # set to the server's URL once it listens
        self.key = ECKey.generate_key("P-256", parameters={"kid": f"demo-{uuid.uuid4().hex[:8]}"})

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks.json"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.key.as_dict(private=False), "use": "sig", "alg": "ES256"}]}

    def id_token(
        self,
        pinfl: str,
        /,
        *,
        audience: str = AUDIENCE,
        lifetime_s: int = 300,
        now: float | None = None,
        key: ECKey | None = None,
        **claims: Any,
    ) -> str:
        """An ID token for the person ``pinfl`` (``claims`` add to or replace the defaults; a
        claim given as None is left out)."""
        issued = int(time.time() if now is None else now)
        signer = key or self.key
        body = {
            "iss": self.issuer, "sub": f"demo-{pinfl[-4:]}", "aud": audience, "iat": issued,
            "exp": issued + lifetime_s, "auth_time": issued, "pinfl": pinfl, **claims,
        }
        header = {"alg": "ES256", "typ": "JWT", "kid": signer.kid}
        return jwt.encode(header, {k: v for k, v in body.items() if v is not None}, signer)

    def app(self) -> FastAPI:
        app = FastAPI(title="Demo national identity provider", docs_url=None, redoc_url=None)

        @app.get("/.well-known/openid-configuration")
        def discovery() -> dict[str, Any]:
            return {
                "issuer": self.issuer,
                "jwks_uri": self.jwks_url,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "pinfl"],
            }

        @app.get("/jwks.json")
        def jwks() -> dict[str, Any]:
            return self.jwks()

        return app


def foreign_key() -> ECKey:
    """A key of nobody the bus trusts, with a kid of its own."""
    return ECKey.generate_key("P-256", parameters={"kid": f"foreign-{uuid.uuid4().hex[:8]}"})
