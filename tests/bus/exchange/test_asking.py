"""The one ask pipeline on its own: a node on the embedded transport with a trivial provider.

No HTTP, no SOAP: ``Asking.ask`` is called as every gateway calls it, so each step (validate,
async check, access, build, sign, send, verify, record the document, audit the refusal) is seen
directly, with the audit log and the document store as a user of the bus would read them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.bus_run import BenchDeployment
from bench.workload import CLIENT, PURPOSE, SERVICE
from bus.config.loader import load_settings
from bus.config.routes import Route
from bus.config.settings import SYNC_TIMEOUT_MAX_S
from bus.core.envelope import Envelope, Kind
from bus.core.errors import AccessDenied, AsyncRequired, MalformedRequest, SchemaInvalid
from bus.exchange.asking import AskContext, Asking
from bus.node.wiring import Node
from schemas.residence import ResidenceRegistrationRequest

PINFL = "31505861234567"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    deployment = BenchDeployment.create(tmp_path)
    path = deployment.write_config(f"embedded://{tmp_path / 'queues.db'}")
    node = Node(load_settings(path))
    node.start()
    try:
        yield node
    finally:
        node.stop()


def _async_only(node: Node) -> Route:
    route = node.router.route(SERVICE)
    # longer than a synchronous request may wait: the service is answered later
    settings = route.settings.model_copy(update={"timeout_s": SYNC_TIMEOUT_MAX_S + 1})
    return Route(**{**route.__dict__, "settings": settings})


def _entries(node: Node) -> list[Any]:
    return list(node.audit.store.entries())


def _context(**kw: Any) -> AskContext:
    return AskContext(CLIENT, kw.pop("purpose", PURPOSE), "officer-17", **kw)


def test_a_synchronous_ask_is_answered_signed_and_recorded_under_a_number(node: Node) -> None:
    context = _context()
    answer = asyncio.run(
        Asking(node).ask(node.router.route(SERVICE), {"pinfl": PINFL}, context)
    )
    assert answer.signed is not None and answer.number is not None and not answer.pending
    signed = Envelope.from_json(answer.signed)
    assert signed.kind is Kind.response and signed.payload["pinfl"] == PINFL
    assert signed.correlation == answer.message_id == context.message_id
    assert node.documents.get(answer.number).envelope == answer.signed
    assert context.sent and not context.audited and context.subject == PINFL
    assert [e.outcome for e in _entries(node)] == ["ok"]  # the provider's node's entry


def test_a_model_the_gateway_validated_is_taken_as_it_is(node: Node) -> None:
    request = ResidenceRegistrationRequest(pinfl=PINFL)
    answer = asyncio.run(Asking(node).ask(node.router.route(SERVICE), request, _context()))
    assert answer.signed is not None


@pytest.mark.parametrize(
    ("request_body", "context", "error"),
    [
        ({"pinfl": "123"}, {}, SchemaInvalid),
        ({"pinfl": PINFL}, {"purpose": "curiosity"}, AccessDenied),
    ],
    ids=["schema", "access"],
)
def test_a_refusal_is_audited_once_and_nothing_is_sent(
    node: Node, request_body: dict[str, str], context: dict[str, Any], error: type[Exception]
) -> None:
    ctx = _context(**context)
    with pytest.raises(error):
        asyncio.run(Asking(node).ask(node.router.route(SERVICE), request_body, ctx))
    assert ctx.audited and not ctx.sent
    (entry,) = _entries(node)
    assert entry.outcome == error.code and entry.side == "gateway"  # type: ignore[attr-defined]


def test_a_service_answered_later_must_be_asked_asynchronously(node: Node) -> None:
    ctx = _context(async_hint="ask the bundle with ?mode=async")
    with pytest.raises(AsyncRequired, match="ask the bundle with"):
        asyncio.run(Asking(node).ask(_async_only(node), {"pinfl": PINFL}, ctx))
    assert [e.outcome for e in _entries(node)] == ["async-required"]
    assert _entries(node)[0].subject is not None  # the person is named (as a keyed hash)


def test_an_asynchronous_ask_is_handed_to_accept_and_pending(node: Node) -> None:
    taken: list[tuple[str, str, str | None]] = []

    async def accept(route: Route, envelope: Envelope, client: str, callback: str | None) -> None:
        taken.append((envelope.id, client, callback))

    ctx = _context(mode="async", callback="https://portal.example/cb")
    answer = asyncio.run(
        Asking(node, accept=accept).ask(_async_only(node), {"pinfl": PINFL}, ctx)
    )
    assert answer.pending and answer.signed is None
    assert taken == [(answer.message_id, CLIENT, "https://portal.example/cb")]
    assert not ctx.sent and _entries(node) == []


def test_a_gateway_without_an_asynchronous_mode_refuses_one(node: Node) -> None:
    with pytest.raises(MalformedRequest, match="no asynchronous mode"):
        asyncio.run(
            Asking(node).ask(node.router.route(SERVICE), {"pinfl": PINFL}, _context(mode="async"))
        )
