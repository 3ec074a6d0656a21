"""The ``citizens:`` settings: the national identity provider whose OpenID Connect ID tokens a
citizen presents to read their own "who read my data" report (``bus.policy.citizen_token``).

    citizens:
      issuer: https://id.egov.uz              # the ID token's iss, exactly
      audience: interagency-bus               # our client id at the provider (the token's aud)
      jwks_url: https://id.egov.uz/jwks       # or jwks_file: keys/idp-jwks.json
      subject_claim: pinfl                    # the claim that holds the person's PINFL

The keys come from ``jwks_url`` (https; plain http only to a loopback host, for the demo) or
from a file (relative to the config file). Tokens are ES256 or RS256 by default
(``algorithms``; never ``none`` or HMAC), with ``leeway_s`` (30 s) of clock skew.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["ALGORITHMS", "CitizenSettings"]

# Signature algorithms an identity provider's ID token may use; "none" and HMAC never.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class CitizenSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    issuer: str = Field(
        pattern=r"^https?://[^\s]+$", description="the identity provider (the ID token's iss)"
    )
    audience: str = Field(
        min_length=1, max_length=200, description="the bus's client id there (the token's aud)"
    )
    jwks_url: str | None = Field(
        default=None, pattern=r"^https?://[^\s]+$", description="the provider's JWKS"
    )
    jwks_file: Path | None = Field(default=None, description="the provider's JWKS, from a file")
    subject_claim: str = Field(
        default="pinfl", min_length=1, max_length=64, description="the claim with the PINFL"
    )
    algorithms: list[Literal[ALGORITHMS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["RS256", "ES256"], min_length=1,
        description="signature algorithms accepted",
    )
    leeway_s: float = Field(default=30, ge=0, le=300, description="clock skew allowed")
    jwks_refresh_s: float = Field(
        default=300, ge=1, le=86_400,
        description="how often the JWKS URL is read again (also when a token names a key not "
        "in it, at most every 10 s)",
    )

    @field_validator("jwks_url")
    @classmethod
    def _https(cls, v: str | None) -> str | None:
        if v is not None:
            parts = urlsplit(v)
            if parts.scheme != "https" and parts.hostname not in _LOOPBACK:
                raise ValueError("jwks_url must be https (plain http only to a loopback host)")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> CitizenSettings:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("name either jwks_url or jwks_file (exactly one)")
        return self
