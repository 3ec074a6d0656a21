"""The provider worker on its own: the embedded transport, real signatures, a fake adapter.

A client-side ``Exchanger`` asks over the same transport, or a test publishes a signed request
itself (to send a copy again, or a tampered one) with a reply queue it reads. The fake adapter
counts its calls, so "the agency was asked once" is observed, not assumed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest

from adapters import Deadline
from bench.bus_run import BenchDeployment
from bench.workload import CLIENT, PURPOSE, SERVICE, echo_answer
from bus.config.loader import load_settings
from bus.config.routes import Route
from bus.core.envelope import Envelope, Kind
from bus.core.errors import NoData, ProviderUnavailable
from bus.exchange.client import Exchanger
from bus.exchange.provider import ProviderWorker
from bus.node.wiring import Node
from bus.transport import Delivery, Message, Transport
from bus.transport.embedded.transport import EmbeddedTransport
from schemas import SharedRequest, SharedResponse
from schemas.residence import ResidenceRegistration, ResidenceRegistrationRequest
from tests.bus.exchange.deliveries import RecordedDelivery

PINFL = "31505861234567"
REPLIES = "reply.test-provider"


@dataclass
class FakeAgency:
    """An adapter that answers from a script: an error to raise, else a registration."""

    failures: list[Exception] = field(default_factory=list)
    calls: int = 0

    def call(self, request: SharedRequest, deadline: Deadline) -> SharedResponse:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return ResidenceRegistration.model_validate(echo_answer(request.subject() or ""))

    def close(self) -> None:
        pass


@dataclass
class Setup:
    node: Node
    route: Route
    transport: EmbeddedTransport
    agency: FakeAgency
    exchanger: Exchanger
    replies: list[Message]
    replied: threading.Event

    def signed_request(self) -> Envelope:
        request = ResidenceRegistrationRequest(pinfl=PINFL)
        envelope = self.exchanger.build(
            self.route, request, client=CLIENT, purpose=PURPOSE, user="officer-17"
        )  # answers go to the test's reply queue, and the client signs that
        return self.node.seal.sign(envelope.addressed(reply_to=REPLIES, node="test-provider"))

    def send(self, signed: Envelope | bytes) -> Envelope:
        """Publish a request with the test's reply queue; the reply that comes back."""
        body = signed if isinstance(signed, bytes) else signed.to_json()
        message_id = Envelope.from_json(body).id
        self.replied.clear()
        self.transport.publish(self.route.queue, Message(
            body=body, message_id=message_id, correlation_id=message_id, reply_to=REPLIES,
        ))
        assert self.replied.wait(10), "no reply"
        return Envelope.from_json(self.replies[-1].body)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    deployment = BenchDeployment.create(tmp_path)
    node = Node(load_settings(deployment.write_config("embedded://unused.db")))
    transport = EmbeddedTransport(tmp_path / "queues.db", node="test-provider",
                                  poll_interval_s=0.02)
    route = node.router.route(SERVICE)
    agency = FakeAgency()
    worker = ProviderWorker(route, agency, seal=node.seal, access=node.access,
                            transport=transport, sleep=lambda _s: None)
    replies: list[Message] = []
    replied = threading.Event()

    def collect(delivery: Delivery) -> None:
        with delivery.process():
            replies.append(delivery.message)
            replied.set()

    transport.declare(route.queue)
    transport.declare(REPLIES)
    subscriptions = [transport.consume(route.queue, worker.handle),
                     transport.consume(REPLIES, collect)]
    exchanger = Exchanger(seal=node.seal, access=node.access, transport=transport)
    try:
        yield Setup(node, route, transport, agency, exchanger, replies, replied)
    finally:
        for subscription in subscriptions:
            subscription.cancel()
        transport.close()
        node.audit.close()


def test_a_request_is_answered_signed_by_the_provider(setup: Setup) -> None:
    signed = setup.signed_request()
    outcome = asyncio.run(setup.exchanger.ask(setup.route, signed))
    answer = outcome.envelope
    assert answer.kind is Kind.response and answer.correlation == signed.id
    assert answer.signer == setup.route.provider and answer.payload["pinfl"] == PINFL
    assert setup.agency.calls == 1


def test_a_copy_of_an_answered_request_is_answered_again_without_asking_the_agency(
    setup: Setup,
) -> None:
    signed = setup.signed_request()
    first = setup.send(signed)
    again = setup.send(signed)  # a redelivery, or a retried publish
    assert first.kind is again.kind is Kind.response
    assert again.payload == first.payload
    assert setup.agency.calls == 1


def test_a_tampered_request_is_refused_signed_and_the_agency_not_asked(setup: Setup) -> None:
    signed = setup.signed_request()
    tampered = signed.to_json().replace(PINFL.encode(), b"42203902740025")
    reply = setup.send(tampered)
    assert reply.kind is Kind.error and reply.payload["code"] == "signature-invalid"
    assert reply.signer == setup.route.provider
    assert setup.agency.calls == 0


@pytest.mark.parametrize(
    ("failure", "code"),
    [(NoData("nobody by that PINFL"), "no-data"),
     (ProviderUnavailable("agency down"), "provider-unavailable")],
)
def test_an_agency_error_is_answered_with_its_code(
    setup: Setup, failure: Exception, code: str
) -> None:
    setup.agency.failures.append(failure)
    reply = setup.send(setup.signed_request())
    assert reply.kind is Kind.error and reply.payload["code"] == code
    assert setup.agency.calls == 1


class _Replies:
    """A transport that records the replies a worker sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str | None, Message]] = []

    def reply(self, request: Message, message: Message) -> None:
        self.sent.append((request.reply_to, message))


@pytest.mark.parametrize(
    ("reply_to", "node", "refused"),
    [
        ("reply.gw-a", "gw-a", None),  # a node's own reply queue
        ("reply.gw-a.host-1.4242", "gw-a.host-1.4242", None),  # a process's on a broker
        ("reply.gw-a.async", "gw-a.host-1.4242", None),  # its node's asynchronous queue
        ("reply.gw-a.async", "gw-a.w2", None),  # an embedded node's worker
        ("reply.gw-a.async", "gw-a", None),
        ("reply.gw-b", "gw-a", "reply-address-foreign"),  # another node's
        ("reply.gw-b.async", "gw-a.host-1.4242", "reply-address-foreign"),
        ("reply.gw-a.host-1.4242", "gw-a", "reply-address-foreign"),  # not the asker's own
        ("reply.gw-ab.async", "gw-a", "reply-address-foreign"),
        ("reply.gw-a.async", "gw-ab", "reply-address-foreign"),
        ("reply..async", "gw-a", "reply-address-foreign"),
    ],
)
def test_an_answer_goes_only_to_a_reply_queue_of_the_signed_asking_node(
    setup: Setup, reply_to: str, node: str, refused: str | None
) -> None:
    """The client signs both where the answer goes and which node asks: an answer to another
    node's queue is refused like a changed address (dead-lettered, the agency not asked)."""
    replies = _Replies()
    worker = ProviderWorker(setup.route, setup.agency, seal=setup.node.seal,
                            access=setup.node.access, transport=cast(Transport, replies),
                            sleep=lambda _s: None)
    envelope = setup.exchanger.build(
        setup.route, ResidenceRegistrationRequest(pinfl=PINFL), client=CLIENT, purpose=PURPOSE,
        user="officer-17",
    )
    signed = setup.node.seal.sign(envelope.addressed(reply_to=reply_to, node=node))
    delivery = RecordedDelivery(Message(body=signed.to_json(), message_id=signed.id,
                                 reply_to=reply_to))
    worker.handle(delivery)
    if refused is None:
        assert delivery.outcome == ("ack", None)
        assert [to for to, _ in replies.sent] == [reply_to] and setup.agency.calls == 1
    else:
        assert delivery.outcome == ("dead-letter", refused)
        assert replies.sent == [] and setup.agency.calls == 0
