"""The envelope: the bus's own message (see DESIGN.md, "The envelope").

An envelope is a JSON object. Its ``signature`` is a detached JWS over the RFC 8785 canonical
JSON of the same object *without* the ``signature`` member (``Envelope.signing_input``). Requests
are signed by the client member, responses and errors by the provider member.

A request also signs where its answer goes: ``reply_to`` (the asking node's reply queue) and
``node`` (the asking node's transport name). A provider answers only to the signed ``reply_to``
and refuses a request whose transport reply address differs from it (``bus.exchange.provider``).
Both are absent from responses; an absent one is left out of the signing input (not signed as
``null``), so envelopes made before these fields existed still verify, and a provider refuses
such a request explicitly (it names no signed reply address).

An envelope is dumped once: ``signing_input`` and ``to_json`` share one ``model_dump`` of the
fields but ``signature`` (kept by the envelope, and by its signed copy from ``with_signature``,
whose other fields are the same). One read from bytes (``from_json``) keeps those bytes, and
``to_json`` gives them back as received rather than writing the same envelope again: a verified
answer is stored and returned byte for byte as its provider sent it. Envelopes are frozen; their
payload dict must not be changed after a dump (nothing does: an envelope is built, then signed).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from bus.core.errors import MalformedRequest
from signing import canonical_json

__all__ = [
    "MEMBER_PATTERN",
    "SERVICE_PATTERN",
    "Envelope",
    "Kind",
    "new_id",
    "provider_of",
    "utcnow",
]

MEMBER_PATTERN = r"^[a-z][a-z0-9-]{1,62}$"
SERVICE_PATTERN = r"^[a-z][a-z0-9-]{1,62}/[a-z][a-z0-9-]{1,62}/v[0-9]+$"
MAX_ENVELOPE_BYTES = 1_048_576
#: Fields added after envelopes were first signed: left out of the signing input and the JSON
#: when absent, so older envelopes keep their signing input.
_LEFT_OUT_WHEN_ABSENT = ("reply_to", "node")


class Kind(StrEnum):
    request = "request"
    response = "response"
    error = "error"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def provider_of(service: str) -> str:
    """The member that provides ``member/service/version``."""
    return service.split("/", 1)[0]


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((k, _hashable(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def _check_finite(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("payload numbers must be finite")
    if isinstance(value, dict):
        for item in value.values():
            _check_finite(item)
    elif isinstance(value, list):
        for item in value:
            _check_finite(item)


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    correlation: str = Field(pattern=r"^[0-9a-f-]{36}$")
    client: str = Field(pattern=MEMBER_PATTERN)
    service: str = Field(pattern=SERVICE_PATTERN)
    user: str = Field(max_length=200)
    purpose: str = Field(max_length=100)
    subject: str | None = Field(default=None, max_length=64)
    issued_at: AwareDatetime  # naive times cannot be compared with the clock: refused
    expires_at: AwareDatetime
    kind: Kind
    payload: dict[str, Any]
    reply_to: str | None = Field(default=None, max_length=255)
    node: str | None = Field(default=None, max_length=255)
    signature: str | None = None

    @field_validator("payload")
    @classmethod
    def _finite_numbers(cls, payload: dict[str, Any]) -> dict[str, Any]:
        # 1e400 parses to inf and re-serialises as null: two texts, one signing input. Refuse.
        _check_finite(payload)
        return payload

    @property
    def provider(self) -> str:
        return provider_of(self.service)

    @property
    def signer(self) -> str:
        """The member whose key must have signed this envelope."""
        return self.client if self.kind is Kind.request else self.provider

    def header_dict(self) -> dict[str, Any]:
        """Everything but the payload and the signature (for logs and the audit, never payloads)."""
        return self.model_dump(mode="json", exclude={"payload", "signature"})

    def __eq__(self, other: object) -> bool:
        """Equal fields (what was dumped or read is no part of it)."""
        if not isinstance(other, Envelope):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:  # frozen: hashed by its fields, as pydantic would
        return hash((type(self), *((k, _hashable(v)) for k, v in self.__dict__.items())))

    # The dump and the bytes read are kept in pydantic's slot for private attributes, which
    # this model declares none of: declared ones (``PrivateAttr``) cost more per envelope made
    # (~35 µs an exchange, measured) than the dumps they would save.
    def _kept(self) -> dict[str, Any]:
        kept: dict[str, Any] | None = self.__pydantic_private__
        if kept is None:
            kept = {}
            object.__setattr__(self, "__pydantic_private__", kept)
        return kept

    def _dump_unsigned(self) -> dict[str, Any]:
        kept = self._kept()
        dumped: dict[str, Any] | None = kept.get("unsigned")
        if dumped is None:
            dumped = self.model_dump(mode="json", exclude={"signature"})
            for name in _LEFT_OUT_WHEN_ABSENT:  # absent, not signed as null
                if dumped.get(name, "") is None:
                    del dumped[name]
            kept["unsigned"] = dumped
        return dumped

    def signing_input(self) -> bytes:
        return canonical_json(self._dump_unsigned())

    def to_json(self) -> bytes:
        kept = self.__pydantic_private__
        if kept is not None and "raw" in kept:
            raw: bytes = kept["raw"]
            return raw
        return orjson.dumps({**self._dump_unsigned(), "signature": self.signature})

    def addressed(self, *, reply_to: str, node: str) -> Envelope:
        """This (unsigned) request with where its answer goes, to be signed with it."""
        return self.model_copy(update={"reply_to": reply_to, "node": node, "signature": None})

    @classmethod
    def from_json(cls, data: bytes | str) -> Envelope:
        if len(data) > MAX_ENVELOPE_BYTES:
            raise MalformedRequest(f"envelope larger than {MAX_ENVELOPE_BYTES} bytes")
        try:
            envelope = cls.model_validate_json(data)
        except ValidationError as exc:
            raise MalformedRequest(f"not a bus envelope: {exc.error_count()} error(s)") from None
        envelope._kept()["raw"] = data.encode() if isinstance(data, str) else bytes(data)
        return envelope

    def reply(self, kind: Kind, payload: dict[str, Any], *, now: dt.datetime) -> Envelope:
        """An unsigned response/error envelope answering this request."""
        return Envelope(
            id=new_id(),
            correlation=self.id,
            client=self.client,
            service=self.service,
            user=self.user,
            purpose=self.purpose,
            subject=self.subject,
            issued_at=now,
            expires_at=self.expires_at,
            kind=kind,
            payload=payload,
        )

    def with_signature(self, signature: str) -> Envelope:
        signed = super().model_copy(update={"signature": signature})
        kept = self.__pydantic_private__
        # the same fields but signature: the same dump; not the bytes read
        object.__setattr__(signed, "__pydantic_private__", None)
        if kept is not None and "unsigned" in kept:
            signed._kept()["unsigned"] = kept["unsigned"]
        return signed

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False
                   ) -> Envelope:
        """A copy that dumps itself afresh (its fields may differ)."""
        copy = super().model_copy(update=update, deep=deep)
        object.__setattr__(copy, "__pydantic_private__", None)
        return copy
