"""The envelope: its JSON form, its signing input, and replies."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
import rfc8785
from pydantic import ValidationError

from bus.core.envelope import MAX_ENVELOPE_BYTES, Envelope, Kind, new_id, provider_of
from bus.core.errors import MalformedRequest

T0 = dt.datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=dt.UTC)


def make(**overrides: Any) -> Envelope:
    fields: dict[str, Any] = {
        "id": new_id(),
        "correlation": new_id(),
        "client": "portal",
        "service": "civil-registry/residence/v1",
        "user": "officer-17",
        "purpose": "child-benefit",
        "subject": "31505861234567",
        "issued_at": T0,
        "expires_at": T0 + dt.timedelta(seconds=5),
        "kind": Kind.request,
        "payload": {"pinfl": "31505861234567", "nested": {"b": [1, 2.5, None], "a": "Ўзбек"}},
    }
    fields.update(overrides)
    return Envelope(**fields)


def raw(**overrides: Any) -> dict[str, Any]:
    data = json.loads(make().with_signature("h..s").to_json())
    data.update(overrides)
    return data


# --- JSON form --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "envelope",
    [
        make(),
        make(signature="eyJhbGciOiJFZERTQSJ9..c2ln"),
        make(subject=None, kind=Kind.response, payload={}),
        make(issued_at=dt.datetime(2025, 1, 1, 5, 0, tzinfo=dt.timezone(dt.timedelta(hours=5)))),
        make(payload={"float": 0.1, "big": 2**53 - 1, "neg": -0.0, "exp": 1e21,
                      "s": "\u2028\U0001f600"}),
    ],
)
def test_json_round_trip_preserves_the_envelope_and_its_signing_input(envelope: Envelope) -> None:
    wire = envelope.to_json()
    back = Envelope.from_json(wire)
    assert back == envelope
    assert back.signing_input() == envelope.signing_input()
    assert back.to_json() == wire
    # str input too (a gateway may hand over text)
    assert Envelope.from_json(wire.decode("utf-8")).signing_input() == envelope.signing_input()


def test_signing_input_is_the_canonical_json_of_everything_but_the_signature() -> None:
    envelope = make(signature="h..s")
    as_json = json.loads(envelope.to_json())
    del as_json["signature"]
    assert envelope.signing_input() == rfc8785.dumps(as_json)
    assert b"signature" not in envelope.signing_input()
    assert envelope.signing_input() == make(
        **{k: getattr(envelope, k) for k in Envelope.model_fields if k != "signature"}
    ).signing_input()


def test_signing_input_ignores_the_signature_only() -> None:
    envelope = make()
    assert envelope.with_signature("a..b").signing_input() == envelope.signing_input()
    changes: dict[str, Any] = {
        "id": new_id(), "correlation": new_id(), "client": "tax-committee",
        "service": "civil-registry/residence/v2", "user": "officer-18", "purpose": "pension",
        "subject": "52902001234567", "issued_at": T0 + dt.timedelta(microseconds=1),
        "expires_at": T0 + dt.timedelta(seconds=6), "kind": Kind.error,
        "payload": {**envelope.payload, "extra": True},
        "reply_to": "reply.gateway-b", "node": "gateway-b",
    }
    assert set(changes) | {"signature"} == set(Envelope.model_fields)
    for field, value in changes.items():
        changed = envelope.model_copy(update={field: value})
        assert changed.signing_input() != envelope.signing_input(), field


def test_signing_input_does_not_depend_on_key_order() -> None:
    a = make(payload={"x": 1, "y": {"b": 2, "a": 1}})
    b = a.model_copy(update={"payload": {"y": {"a": 1, "b": 2}, "x": 1}})
    assert a.signing_input() == b.signing_input()


def test_with_signature_returns_a_copy() -> None:
    envelope = make()
    signed = envelope.with_signature("h..s")
    assert envelope.signature is None
    assert signed.signature == "h..s"
    assert signed.model_copy(update={"signature": None}) == envelope


def test_envelope_is_frozen() -> None:
    envelope = make()
    with pytest.raises(ValidationError):
        envelope.purpose = "anything"  # type: ignore[misc]


def test_header_dict_has_no_payload_or_signature() -> None:
    header = make(signature="h..s").header_dict()
    assert "payload" not in header
    assert "signature" not in header
    assert header["client"] == "portal"
    assert header["issued_at"] == "2025-03-14T09:26:53.589793Z"
    json.dumps(header)  # JSON-ready


# --- refusing input ---------------------------------------------------------------------------


def test_extra_fields_are_refused() -> None:
    with pytest.raises(MalformedRequest):
        Envelope.from_json(json.dumps(raw(priority="high")))
    with pytest.raises(ValidationError):
        Envelope.model_validate(raw(priority="high"))


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[]", b"null", b"42", b'"envelope"', b"{", b"{}", b'{"id": 1}',
     b"\xff\xfe\xfd", "{\"id\": \"\u00e9\"}".encode()],
)
def test_garbage_is_a_malformed_request(data: bytes) -> None:
    with pytest.raises(MalformedRequest):
        Envelope.from_json(data)


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "not-a-uuid"},
        {"id": "x" * 36},
        {"correlation": None},
        {"client": "Portal"},
        {"client": "p"},
        {"client": "portal/x"},
        {"service": "civil-registry/residence"},
        {"service": "civil-registry/residence/1"},
        {"service": "../etc/passwd/v1"},
        {"user": "u" * 201},
        {"purpose": "p" * 101},
        {"subject": "s" * 65},
        {"issued_at": "yesterday"},
        {"expires_at": None},
        {"kind": "notification"},
        {"payload": []},
        {"payload": "{}"},
        {"signature": 5},
    ],
)
def test_invalid_fields_are_a_malformed_request(changes: dict[str, Any]) -> None:
    with pytest.raises(MalformedRequest):
        Envelope.from_json(json.dumps(raw(**changes)))


@pytest.mark.parametrize("field", ["issued_at", "expires_at"])
def test_timestamps_without_a_time_zone_are_refused(field: str) -> None:
    """A naive timestamp cannot be compared with the clock: refuse it while parsing."""
    with pytest.raises(MalformedRequest):
        Envelope.from_json(json.dumps(raw(**{field: "2025-03-14T09:26:53"})))


def test_missing_required_field_is_a_malformed_request() -> None:
    data = raw()
    del data["purpose"]
    with pytest.raises(MalformedRequest):
        Envelope.from_json(json.dumps(data))


def test_oversized_input_is_refused_before_parsing() -> None:
    data = raw(payload={"blob": "x" * MAX_ENVELOPE_BYTES})
    with pytest.raises(MalformedRequest, match="larger than"):
        Envelope.from_json(json.dumps(data).encode())
    with pytest.raises(MalformedRequest, match="larger than"):
        Envelope.from_json(b"{" * (MAX_ENVELOPE_BYTES + 1))


def test_error_message_does_not_echo_the_input() -> None:
    with pytest.raises(MalformedRequest) as info:
        Envelope.from_json(json.dumps(raw(subject="31505861234567" * 5)))
    assert "31505861234567" not in str(info.value)
    assert info.value.__cause__ is None


# --- who signs, and replies -------------------------------------------------------------------


def test_provider_and_signer() -> None:
    request = make()
    assert provider_of("civil-registry/residence/v1") == "civil-registry"
    assert request.provider == "civil-registry"
    assert request.signer == "portal"
    assert make(kind=Kind.response).signer == "civil-registry"
    assert make(kind=Kind.error).signer == "civil-registry"


@pytest.mark.parametrize("kind", [Kind.response, Kind.error])
def test_reply_answers_the_request(kind: Kind) -> None:
    request = make(signature="h..s")
    now = T0 + dt.timedelta(seconds=2)
    reply = request.reply(kind, {"answer": 42}, now=now)
    assert reply.correlation == request.id
    assert reply.id != request.id
    uuid.UUID(reply.id)
    assert reply.expires_at == request.expires_at
    assert reply.issued_at == now
    assert reply.kind is kind
    assert reply.payload == {"answer": 42}
    assert reply.signature is None
    for field in ("client", "service", "user", "purpose", "subject"):
        assert getattr(reply, field) == getattr(request, field), field
    assert reply.signer == "civil-registry"


def test_new_ids_are_unique_uuid4() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(uuid.UUID(i).version == 4 for i in ids)


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"[1, 1e999]"])
def test_non_finite_numbers_are_refused_they_would_sign_as_null(number: bytes) -> None:
    # 1e400 parses to inf and would re-serialise as null: two texts, one signing input.
    raw = (
        b'{"id":"562cab8a-d246-471c-94cd-0e7182d886ec","correlation":"d93b82bf-af31-4956-a7a4-'
        b'a3e1c265f016","client":"portal","service":"cadastre/property-ownership/v1","user":"u",'
        b'"purpose":"p","subject":null,"issued_at":"2026-11-23T12:47:49Z","expires_at":'
        b'"2026-11-23T12:48:49Z","kind":"request","payload":{"x":' + number + b'},"signature":null}'
    )
    with pytest.raises(MalformedRequest):
        Envelope.from_json(raw)


def test_the_reply_address_is_signed_and_left_out_when_absent() -> None:
    """An envelope without ``reply_to``/``node`` keeps the signing input it had before those
    fields existed; once set, they are signed like every other field."""
    envelope = make()
    fields = envelope.model_dump(mode="json", exclude={"signature", "reply_to", "node"})
    assert envelope.signing_input() == rfc8785.dumps(fields)
    assert b"reply_to" not in envelope.to_json()
    addressed = envelope.addressed(reply_to="reply.gateway-a", node="gateway-a")
    assert addressed.signing_input() != envelope.signing_input()
    moved = addressed.model_copy(update={"reply_to": "reply.attacker"})
    assert moved.signing_input() != addressed.signing_input()
    assert Envelope.from_json(addressed.to_json()) == addressed
