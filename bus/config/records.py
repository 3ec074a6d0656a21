"""The settings of what a node keeps (``bus.records``): ``documents:`` (request numbers and the
signed answers), ``messages:`` (asynchronous results) and ``audit:`` (the audit log), parts of
``BusSettings``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["AuditSettings", "DocumentSettings", "MessageSettings"]

_STRICT = ConfigDict(extra="forbid")


class DocumentSettings(BaseModel):
    """Request numbers and the documents a gateway node returned (``bus.records.documents``)."""

    model_config = _STRICT
    path: Path | None = Field(
        default=None,
        description="SQLite file of request numbers and documents; default: documents.db next "
        "to the embedded queue file, or beside this config",
    )
    prefix: str = Field(
        default="BUS",
        pattern=r"^[A-Z]{2,8}$",
        description="first part of request numbers; distinct per gateway node unless the "
        "nodes share a PostgreSQL state (then they count from one counter)",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="base URL printed in QR codes and verify links (GET {public_url}/verify/"
        "{number}); required on a node whose gateway answers clients (a member with an "
        "api_token_sha256); never taken from a request's Host header",
    )
    @field_validator("public_url")
    @classmethod
    def _base_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if not parts.hostname or "@" in parts.netloc or parts.query or parts.fragment:
            raise ValueError(
                "public_url must be http(s)://host[:port][/path], without user, query or "
                "fragment"
            )
        try:
            parts.port  # noqa: B018 - raises on a port that is not one
        except ValueError:
            raise ValueError("public_url has a port that is not a number 0-65535") from None
        return v.rstrip("/")

    retention_days: int | None = Field(
        default=365,
        ge=1,
        le=36_500,
        description="days a signed answer (personal data) is kept after it was recorded; then "
        "it is deleted and the number's public /verify view says so; null: kept for ever",
    )


class MessageSettings(BaseModel):
    """Results of asynchronous requests (``bus.records.async_results``), kept for the client to
    fetch."""

    model_config = _STRICT
    retention_days: int | None = Field(
        default=7,
        ge=1,
        le=36_500,
        description="days a finished asynchronous result is kept; at most documents."
        "retention_days (a result holds the same signed answer); null: kept for ever",
    )


class AuditSettings(BaseModel):
    """The audit log (``bus.records.audit``): where it is kept and the key of its subject
    hashes."""

    model_config = _STRICT
    url: SecretStr | None = Field(
        default=None,
        description="sqlite:///PATH (relative to this file; sqlite:////PATH absolute) or "
        "postgresql://user:pass@host:5432/db; default: audit.db next to the embedded queue "
        "file, or beside this config",
    )
    table: str = Field(
        default="bus_audit",
        pattern=r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$",
        description="PostgreSQL table, [schema.]name (created if missing)",
    )
    secret: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="key of the HMAC under which subjects (PINFL, STIR) are stored; required "
        "to run a node (set it from the environment: BUS_AUDIT__SECRET)",
    )
    batch_max: int = Field(
        default=256, ge=1, le=10_000, description="entries written in one transaction at most"
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith(
            ("sqlite:///", "postgresql://", "postgres://")
        ):
            raise ValueError("audit url must start with sqlite:/// or postgresql://")
        return v
