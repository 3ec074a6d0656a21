"""Forged, tampered and expired envelopes put straight on a service queue (past the gateway):
the provider's node refuses each before calling the agency, with a signed error answer."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import pytest

from bus.core.envelope import Envelope, Kind, new_id
from bus.transport import Message, reply_queue, service_queue
from demo.data import AZIZ
from demo.scenario import RESIDENCE, DemoStack
from schemas import ResidenceRegistrationRequest
from signing import JwsSigner, generate_member_key, load_private_key


def _request(stack: DemoStack, **changes: object) -> Envelope:
    node = stack.node
    assert node.exchanger is not None
    envelope = node.exchanger.build(
        node.router.route(RESIDENCE),
        ResidenceRegistrationRequest(pinfl=AZIZ.pinfl),
        client="portal",
        purpose="child-benefit",
        user="officer-17",
    ).addressed(reply_to=reply_queue(node.transport.node), node=node.transport.node)
    return envelope.model_copy(update=changes)


def _send(stack: DemoStack, envelope: Envelope) -> Envelope:
    """Put ``envelope`` on the service queue as is; return the provider's verified answer."""
    transport = stack.node.transport
    future = transport.request(
        service_queue(RESIDENCE),
        Message(body=envelope.to_json(), message_id=envelope.id, expires_at=time.time() + 10),
    )
    reply = Envelope.from_json(future.result(timeout=10).body)
    assert reply.correlation == envelope.id
    assert stack.node.seal.verify(reply) is reply  # the refusal itself is signed by the provider
    return reply


def _lookups(stack: DemoStack) -> int:
    return int(stack.residence.server.config.app.state.lookups)


def _refused(stack: DemoStack, envelope: Envelope, code: str) -> None:
    before = _lookups(stack)
    reply = _send(stack, envelope)
    assert reply.kind is Kind.error
    assert reply.payload["code"] == code
    assert _lookups(stack) == before, "the agency was called for a refused request"


def test_a_well_signed_request_is_answered(demo_stack: DemoStack) -> None:
    """The control case: the same path with an honest envelope reaches the agency."""
    before = _lookups(demo_stack)
    reply = _send(demo_stack, demo_stack.node.seal.sign(_request(demo_stack)))
    assert reply.kind is Kind.response and reply.payload["pinfl"] == AZIZ.pinfl
    assert _lookups(demo_stack) == before + 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e.model_copy(update={"payload": {"pinfl": "42203902740025"}}),  # another person
        lambda e: e.model_copy(update={"purpose": "social-assistance"}),
        lambda e: e.model_copy(update={"expires_at": e.expires_at + dt.timedelta(days=1)}),
        lambda e: e.model_copy(update={"signature": e.signature[:-4] + "AAAA"}),  # type: ignore[index]
        lambda e: e.model_copy(update={"signature": None}),
        lambda e: e.model_copy(update={"signature": "not-a-jws"}),
        lambda e: e.model_copy(update={"reply_to": "reply.attacker", "node": "attacker"}),
    ],
    ids=["payload", "purpose", "deadline", "signature-bytes", "unsigned", "garbage-signature",
         "reply-address"],
)
def test_tampered_request_is_refused(
    demo_stack: DemoStack, tamper: Callable[[Envelope], Envelope]
) -> None:
    signed = demo_stack.node.seal.sign(_request(demo_stack))
    _refused(demo_stack, tamper(signed), "signature-invalid")


def test_request_signed_by_another_member_is_refused(demo_stack: DemoStack) -> None:
    # The cadastre's genuine key signing a request that claims to come from the portal.
    cadastre = JwsSigner("cadastre", load_private_key(demo_stack.state / "keys" / "cadastre.key"))
    envelope = _request(demo_stack)
    _refused(
        demo_stack,
        envelope.with_signature(cadastre.sign(envelope.signing_input())),
        "signature-invalid",
    )


def test_request_signed_by_an_unknown_key_is_refused(demo_stack: DemoStack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    generate_member_key(tmp_path, "portal")
    stranger = JwsSigner("portal", load_private_key(tmp_path / "portal.key"))
    envelope = _request(demo_stack)
    _refused(
        demo_stack,
        envelope.with_signature(stranger.sign(envelope.signing_input())),
        "signature-invalid",
    )


def _dead_letter_of(stack: DemoStack, message_id: str) -> str:
    transport = stack.node.transport
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for letter in transport.dead_letters():
            if letter.message.message_id == message_id:
                transport.purge_dead_letters(letter.id)
                return letter.reason
        time.sleep(0.02)
    raise AssertionError("not dead-lettered")


def test_expired_request_is_dead_lettered_not_served(demo_stack: DemoStack) -> None:
    """Past its deadline nobody waits for an answer: the request goes to the dead letters."""
    now = dt.datetime.now(dt.UTC)
    envelope = demo_stack.node.seal.sign(
        _request(
            demo_stack,
            issued_at=now - dt.timedelta(seconds=20),
            expires_at=now - dt.timedelta(seconds=10),
        )
    )
    before = _lookups(demo_stack)
    demo_stack.node.transport.publish(
        service_queue(RESIDENCE),
        Message(body=envelope.to_json(), message_id=envelope.id, expires_at=time.time() + 10),
    )
    assert _dead_letter_of(demo_stack, envelope.id) == "expired"
    assert _lookups(demo_stack) == before


def test_issued_in_the_future_is_refused(demo_stack: DemoStack) -> None:
    now = dt.datetime.now(dt.UTC)
    envelope = _request(
        demo_stack,
        issued_at=now + dt.timedelta(minutes=5),
        expires_at=now + dt.timedelta(minutes=6),
    )
    _refused(demo_stack, demo_stack.node.seal.sign(envelope), "expired")


def test_request_for_a_purpose_outside_the_right_is_refused_by_the_provider(
    demo_stack: DemoStack,
) -> None:
    """The provider's node re-checks the right even if a client node skipped it."""
    envelope = _request(demo_stack, purpose="marketing")
    _refused(demo_stack, demo_stack.node.seal.sign(envelope), "access-denied")


def test_invalid_payload_signed_by_the_client_is_refused(demo_stack: DemoStack) -> None:
    envelope = _request(demo_stack, payload={"pinfl": "123"})
    _refused(demo_stack, demo_stack.node.seal.sign(envelope), "schema-invalid")


def test_unreadable_message_is_dead_lettered_with_a_reason(demo_stack: DemoStack) -> None:
    transport = demo_stack.node.transport
    before = _lookups(demo_stack)
    message_id = new_id()
    transport.publish(
        service_queue(RESIDENCE),
        Message(body=b"<soap>not an envelope</soap>", message_id=message_id),
    )
    assert _dead_letter_of(demo_stack, message_id) == "malformed-request"
    assert _lookups(demo_stack) == before
