"""The ``http:`` settings: how a node's HTTP server protects itself from hostile or slow clients.

Read by ``bus.gateway.server`` (time limits and the connection cap, given to uvicorn) and
``bus.gateway.throttle`` (the per-source throttles and the operator sign-in lockout)::

    http:
      header_timeout_s: 10        # a request's headers must arrive within this, else closed
      body_timeout_s: 30          # its body within this (408 problem), else closed
      keep_alive_s: 5             # an idle keep-alive connection is closed after this
      max_connections: 1000       # connections and requests at once; beyond: 503
      max_header_bytes: 32768     # request line and headers together; beyond: 400
      public: {per_second: 5, burst: 30}      # /verify and /v1/documents, per source address
      sign_in: {per_second: 2, burst: 20}     # /inbox (operator sign-in), per source address
      anonymous: {per_second: 1, burst: 30}   # refusals before authentication, per source
      lockout_failures: 5         # failed operator sign-ins from one source in a row ...
      lockout_s: 300              # ... lock it out of /inbox for this long (429, audited)
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["HttpSettings", "SourceRate"]

_STRICT = ConfigDict(extra="forbid")


class SourceRate(BaseModel):
    """A token bucket per source address: ``burst`` requests at once, ``per_second`` after."""

    model_config = _STRICT
    per_second: float = Field(gt=0, le=10_000)
    burst: int = Field(ge=1, le=100_000)


class HttpSettings(BaseModel):
    model_config = _STRICT
    header_timeout_s: float = Field(default=10.0, gt=0, le=300)
    body_timeout_s: float = Field(default=30.0, gt=0, le=600)
    keep_alive_s: float = Field(default=5.0, gt=0, le=300)
    max_connections: int = Field(default=1000, ge=1, le=100_000)
    max_header_bytes: int = Field(default=32_768, ge=1024, le=1_048_576)
    public: SourceRate = Field(default_factory=lambda: SourceRate(per_second=5, burst=30))
    sign_in: SourceRate = Field(default_factory=lambda: SourceRate(per_second=2, burst=20))
    anonymous: SourceRate = Field(default_factory=lambda: SourceRate(per_second=1, burst=30))
    lockout_failures: int = Field(default=5, ge=1, le=1000)
    lockout_s: float = Field(default=300.0, gt=0, le=86_400)
