"""Replays on a service queue: a transport redelivery is answered again (from memory), while the
same envelope id from another source — another reply address, or other bytes — is refused."""

from __future__ import annotations

import queue
import time

from bus.core.envelope import Envelope, Kind
from bus.transport import Delivery, Message, reply_queue, service_queue
from demo.data import AZIZ
from demo.scenario import RESIDENCE, DemoStack
from schemas import ResidenceRegistrationRequest


def _signed(stack: DemoStack, **changes: object) -> Envelope:
    node = stack.node
    assert node.exchanger is not None
    envelope = node.exchanger.build(
        node.router.route(RESIDENCE),
        ResidenceRegistrationRequest(pinfl=AZIZ.pinfl),
        client="portal",
        purpose="child-benefit",
        user="officer-17",
    ).addressed(reply_to=reply_queue(node.transport.node), node=node.transport.node)
    return node.seal.sign(envelope.model_copy(update=changes))


def _ask(stack: DemoStack, envelope: Envelope) -> Envelope:
    future = stack.node.transport.request(
        service_queue(RESIDENCE),
        Message(body=envelope.to_json(), message_id=envelope.id, expires_at=time.time() + 10),
    )
    reply = Envelope.from_json(future.result(timeout=10).body)
    assert stack.node.seal.verify(reply) is reply
    return reply


def _ask_elsewhere(stack: DemoStack, body: bytes, message_id: str, reply_to: str) -> Envelope:
    """Publish as someone whose answers go to ``reply_to``; return what arrives there."""
    transport = stack.node.transport
    transport.declare(reply_to)
    arrived: queue.Queue[bytes] = queue.Queue()

    def take(delivery: Delivery) -> None:
        with delivery.process():
            arrived.put(delivery.message.body)

    subscription = transport.consume(reply_to, take)
    try:
        transport.publish(
            service_queue(RESIDENCE),
            Message(body=body, message_id=message_id, reply_to=reply_to,
                    expires_at=time.time() + 10),
        )
        return Envelope.from_json(arrived.get(timeout=10))
    finally:
        subscription.cancel()


def _answered_nowhere(stack: DemoStack, body: bytes, message_id: str, reply_to: str) -> str:
    """Publish as someone whose answers go to ``reply_to``; once the provider dead-lettered it,
    nothing has arrived there. The dead letter's reason."""
    transport = stack.node.transport
    transport.declare(reply_to)
    arrived: list[bytes] = []

    def take(delivery: Delivery) -> None:
        with delivery.process():
            arrived.append(delivery.message.body)

    subscription = transport.consume(reply_to, take)
    try:
        transport.publish(
            service_queue(RESIDENCE),
            Message(body=body, message_id=message_id, reply_to=reply_to,
                    expires_at=time.time() + 10),
        )
        give_up = time.monotonic() + 10
        while not (reasons := [d.reason for d in transport.dead_letters(10_000)
                               if d.message.message_id == message_id]):
            assert time.monotonic() < give_up, "neither answered nor dead-lettered"
            time.sleep(0.02)
        assert arrived == []  # the provider dead-letters instead of answering, never both
        return reasons[0]
    finally:
        subscription.cancel()


def _lookups(stack: DemoStack) -> int:
    return int(stack.residence.server.config.app.state.lookups)


def test_a_redelivery_is_answered_again_without_calling_the_agency(demo_stack: DemoStack) -> None:
    envelope = _signed(demo_stack)
    before = _lookups(demo_stack)
    first = _ask(demo_stack, envelope)
    again = _ask(demo_stack, envelope)  # same bytes, same reply address: a redelivery
    assert first.kind is Kind.response and again == first
    assert _lookups(demo_stack) == before + 1
    # the provider passed the request's id to the agency, which journals it (X-Bus-Message-Id)
    assert demo_stack.residence.server.config.app.state.message_ids[-1] == envelope.id


def test_the_same_envelope_to_another_reply_address_is_answered_nowhere(
    demo_stack: DemoStack,
) -> None:
    """The reply address is signed: a captured request re-published with the answers going
    elsewhere is not answered there (nor anywhere) and never reaches the agency."""
    envelope = _signed(demo_stack)
    answered = _ask(demo_stack, envelope)
    assert answered.kind is Kind.response
    before = _lookups(demo_stack)
    reason = _answered_nowhere(demo_stack, envelope.to_json(), envelope.id, "reply.test-attacker")
    assert reason == "reply-address-mismatch"
    assert _lookups(demo_stack) == before


def test_a_changed_reply_address_arriving_first_claims_nothing(demo_stack: DemoStack) -> None:
    """A copy sent elsewhere first is refused before the replay guard: the honest request that
    follows is still answered, to its signed address."""
    envelope = _signed(demo_stack)
    reason = _answered_nowhere(demo_stack, envelope.to_json(), envelope.id, "reply.test-first")
    assert reason == "reply-address-mismatch"
    assert _ask(demo_stack, envelope).kind is Kind.response


def test_a_request_that_signs_no_reply_address_is_answered_nowhere(demo_stack: DemoStack) -> None:
    """An envelope made before requests signed their reply address is refused explicitly."""
    envelope = _signed(demo_stack, reply_to=None, node=None)
    before = _lookups(demo_stack)
    reason = _answered_nowhere(demo_stack, envelope.to_json(), envelope.id,
                               "reply.test-old-client")
    assert reason == "reply-address-unsigned"
    assert _lookups(demo_stack) == before


def test_a_request_signing_another_nodes_reply_queue_is_answered_nowhere(
    demo_stack: DemoStack,
) -> None:
    """The signed reply address must be a reply queue of the signed asking node: a client
    cannot send another node's answers to itself, nor its answers into another node's queue."""
    envelope = _signed(demo_stack, reply_to="reply.test-other-node")
    before = _lookups(demo_stack)
    reason = _answered_nowhere(demo_stack, envelope.to_json(), envelope.id,
                               "reply.test-other-node")
    assert reason == "reply-address-foreign"
    assert _lookups(demo_stack) == before


def test_another_envelope_under_a_used_id_is_refused(demo_stack: DemoStack) -> None:
    """Validly signed, same reply address, but other bytes under an id already acted on."""
    envelope = _signed(demo_stack)
    assert _ask(demo_stack, envelope).kind is Kind.response
    other = demo_stack.node.seal.sign(envelope.model_copy(update={"user": "officer-99"}))
    assert other.id == envelope.id and other.signature != envelope.signature
    reply = _ask(demo_stack, other)
    assert reply.kind is Kind.error and reply.payload["code"] == "replayed"


def test_a_forged_copy_does_not_claim_the_id(demo_stack: DemoStack) -> None:
    """A forgery arriving first is refused for its signature and reserves nothing."""
    envelope = _signed(demo_stack)
    forged = envelope.model_copy(update={"purpose": "social-assistance"})  # signature broken
    refused = _ask_elsewhere(demo_stack, forged.to_json(), envelope.id, "reply.test-forger")
    assert refused.payload["code"] == "signature-invalid"
    assert _ask(demo_stack, envelope).kind is Kind.response
