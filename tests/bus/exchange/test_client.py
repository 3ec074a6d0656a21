"""The client side of an exchange: what it signs, and what its errors name."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, cast

import pytest

from bus.config.routes import Route
from bus.core.envelope import Envelope, Kind, new_id
from bus.core.errors import BusUnavailable, DeadlineExceeded
from bus.core.seal import Seal
from bus.exchange.client import Exchanger
from bus.policy.access import AccessPolicy
from bus.transport import Message, Transport, reply_queue
from bus.transport.replies import PendingReplies, complete
from signing import JwsSigner, load_signing_key
from tests.signing.pki import KEY_PASSPHRASE, T0, Pki, make_pki

CLIENT, PROVIDER = "portal", "civil-registry"
SERVICE = "civil-registry/residence/v1"
ROUTE = cast(
    Route,
    type("R", (), {"service": SERVICE, "provider": PROVIDER, "queue": "svc.x", "timeout_s": 5.0})(),
)


class SweptTransport:
    """A transport whose requests wait in a real ``PendingReplies``; nothing ever answers."""

    node = "gateway-a.host.42"

    def __init__(self) -> None:
        self.clock = 0.0
        self.waiting = PendingReplies(clock=lambda: self.clock)
        self.sent: list[Message] = []
        self.refuse: BusUnavailable | None = None

    def request(self, queue: str, message: Message) -> Future[Message]:
        self.sent.append(message)
        future: Future[Message] = Future()
        self.waiting.add(message.message_id, future, 10.0)
        if self.refuse is not None:
            complete(future, error=self.refuse)  # the broker refused the publish
        return future

    def publish(self, queue: str, message: Message, *, timeout_s: float | None = None) -> None:
        self.sent.append(message)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    pki = make_pki(tmp_path)
    pki.issue(CLIENT, PROVIDER)
    return pki


def _exchanger(pki: Pki, transport: SweptTransport) -> Exchanger:
    signer = JwsSigner(CLIENT, load_signing_key(pki.keys / f"{CLIENT}.key", KEY_PASSPHRASE))
    seal = Seal({CLIENT: signer}, pki.store(CLIENT, PROVIDER), clock=pki.clock)
    return Exchanger(seal=seal, access=AccessPolicy([]), transport=cast(Transport, transport))


def _request(**overrides: Any) -> Envelope:
    message_id = new_id()
    fields: dict[str, Any] = {
        "id": message_id, "correlation": message_id, "client": CLIENT, "service": SERVICE,
        "user": "officer-17", "purpose": "child-benefit", "issued_at": T0,
        "expires_at": T0 + dt.timedelta(seconds=5), "kind": Kind.request, "payload": {},
    }
    fields.update(overrides)
    return Envelope(**fields)


async def _ask_until_swept(exchanger: Exchanger, transport: SweptTransport) -> None:
    asking = asyncio.ensure_future(exchanger.ask(ROUTE, _request()))
    while not transport.sent:
        await asyncio.sleep(0)
    transport.clock = 11.0
    transport.waiting.expire()  # the pending-replies sweep, as the transports run it
    await asking


def test_a_deadline_from_the_pending_replies_sweep_names_the_request(pki: Pki) -> None:
    transport = SweptTransport()
    exchanger = _exchanger(pki, transport)
    with pytest.raises(DeadlineExceeded) as info:
        asyncio.run(_ask_until_swept(exchanger, transport))
    sent = Envelope.from_json(transport.sent[0].body)
    assert info.value.message_id == sent.id
    assert (info.value.client, info.value.service) == (CLIENT, SERVICE)


def test_a_refused_publish_names_the_request(pki: Pki) -> None:
    transport = SweptTransport()
    transport.refuse = BusUnavailable("the broker refused the message")
    exchanger = _exchanger(pki, transport)
    with pytest.raises(BusUnavailable) as info:
        asyncio.run(exchanger.ask(ROUTE, _request()))
    assert info.value.message_id == Envelope.from_json(transport.sent[0].body).id


def test_the_client_signs_where_the_answer_goes(pki: Pki) -> None:
    transport = SweptTransport()
    exchanger = _exchanger(pki, transport)
    with pytest.raises(DeadlineExceeded):
        asyncio.run(_ask_until_swept(exchanger, transport))
    sync = Envelope.from_json(transport.sent[0].body)
    assert sync.reply_to == reply_queue(transport.node) and sync.node == transport.node
    posted = exchanger.post(ROUTE, _request(), reply_to="reply.gateway-a.async")
    assert posted.reply_to == "reply.gateway-a.async" and posted.node == transport.node
    assert transport.sent[1].reply_to == posted.reply_to
    exchanger.seal.verify(posted)  # signed with it
    with pytest.raises(Exception, match="signature"):
        exchanger.seal.verify(posted.model_copy(update={"reply_to": "reply.attacker"}))


class AnsweringTransport(SweptTransport):
    """Answers each request as the provider: before ``request`` returns (``at_once``), or from
    a thread of its own, as a transport's consumer does."""

    replies_may_block = True

    def __init__(self, provider: Seal, *, at_once: bool) -> None:
        super().__init__()
        self.provider = provider
        self.at_once = at_once
        self.answered_in: list[int] = []

    def request(self, queue: str, message: Message) -> Future[Message]:
        self.sent.append(message)
        future: Future[Message] = Future()

        def answer() -> None:
            asked = Envelope.from_json(message.body)
            signed = self.provider.sign(asked.reply(Kind.response, {"ok": True}, now=T0))
            self.answered_in.append(threading.get_ident())
            future.set_result(Message(body=signed.to_json(), message_id=signed.id,
                                      correlation_id=asked.id))

        if self.at_once:
            answer()
        else:
            threading.Thread(target=answer, name="transport-answers").start()
        return future


@pytest.mark.parametrize("at_once", [False, True])
def test_the_answer_is_kept_where_it_arrives_never_on_the_event_loop(
    pki: Pki, at_once: bool
) -> None:
    signer = JwsSigner(PROVIDER, load_signing_key(pki.keys / f"{PROVIDER}.key", KEY_PASSPHRASE))
    provider = Seal({PROVIDER: signer}, pki.store(CLIENT, PROVIDER), clock=pki.clock)
    transport = AnsweringTransport(provider, at_once=at_once)
    exchanger = _exchanger(pki, transport)
    kept_in: list[int] = []

    def keep(answer: Envelope) -> str:
        kept_in.append(threading.get_ident())
        return f"kept {answer.id}"

    async def ask() -> tuple[Any, int]:
        return await exchanger.ask(ROUTE, _request(), keep=keep), threading.get_ident()

    outcome, loop_thread = asyncio.run(ask())
    assert outcome.kept == f"kept {outcome.envelope.id}"
    assert outcome.envelope.payload == {"ok": True}
    assert kept_in[0] != loop_thread
    if not at_once:  # by the transport's thread, with no other hand-off
        assert kept_in == transport.answered_in


def test_nothing_is_kept_for_a_caller_that_gave_up(pki: Pki) -> None:
    transport = SweptTransport()
    exchanger = _exchanger(pki, transport)
    kept: list[Envelope] = []

    async def ask_and_give_up() -> None:
        asking = asyncio.ensure_future(exchanger.ask(ROUTE, _request(), keep=kept.append))
        while not transport.sent:
            await asyncio.sleep(0)
        asking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asking

    asyncio.run(ask_and_give_up())
    assert kept == []


def test_an_io_thread_is_never_kept_waiting_on_the_answers_record(pki: Pki) -> None:
    signer = JwsSigner(PROVIDER, load_signing_key(pki.keys / f"{PROVIDER}.key", KEY_PASSPHRASE))
    provider = Seal({PROVIDER: signer}, pki.store(CLIENT, PROVIDER), clock=pki.clock)
    transport = AnsweringTransport(provider, at_once=False)
    transport.replies_may_block = False  # as RabbitMQ's reply queue, completing on its I/O thread
    exchanger = _exchanger(pki, transport)
    kept_in: list[str] = []

    async def ask() -> tuple[Any, str]:
        outcome = await exchanger.ask(
            ROUTE, _request(), keep=lambda a: kept_in.append(threading.current_thread().name))
        return outcome, threading.current_thread().name

    outcome, loop_thread = asyncio.run(ask())
    assert outcome.envelope.payload == {"ok": True}
    assert kept_in and kept_in[0] not in (loop_thread, "transport-answers")
