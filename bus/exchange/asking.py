"""The one ask pipeline every gateway uses: ``Asking.ask(route, request, context) -> Answer``.

A gateway (HTTP, SOAP, a bundle's part) only parses what a member sent into a shared-schema
request and an ``AskContext``, and renders the ``Answer`` or the refusal. In between, always in
this order:

1. validate the request against the service's request model (a gateway may pass a model it
   validated already);
2. refuse a synchronous request of a service that is answered later (``AsyncRequired``);
3. build the request envelope (``Exchanger.build``: the access right is checked here);
4. asynchronous: hand it to ``accept`` (the gateway's asynchronous requests: record, publish),
   and answer that it is pending;
5. synchronous: sign, send, wait and verify (``Exchanger.ask``), and record the signed answer
   under a request number (``DocumentStore.issue``, in the thread that received the reply,
   before the event loop is woken);
6. on a refusal at any step: write its audit entry, durable before the refusal is given, unless
   the provider's node recorded it already (``recorded_by_provider``).

An asynchronous request's answer arrives later, on the node's async reply queue, and is taken by
``answer_of``: verified as its provider's answer (``Exchanger.verify_reply``) and recorded under
a request number (``_issue``, the same as step 5's), so a synchronous and an asynchronous answer
are checked and recorded in one place.

The context records what was learnt on the way (message id, correlation, subject, whether the
request reached a provider and whether its refusal is in the audit log), which the gateway uses
for its log line and metrics. Counting and logging stay with the gateways, which also see the
requests refused before a pipeline starts (a missing token, a body that is not JSON).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from bus.config.routes import Route
from bus.core.envelope import Envelope, new_id
from bus.core.errors import (
    AsyncRequired,
    BusError,
    BusUnavailable,
    MalformedRequest,
    ProviderInvalidAnswer,
    SchemaInvalid,
)
from bus.exchange.client import Asked, Exchanger, recorded_by_provider
from bus.records.audit import AuditLog
from bus.records.documents import DocumentRecord, DocumentStore
from schemas import SharedRequest

__all__ = ["Accept", "Answer", "AskContext", "Asking", "Parts"]

Accept = Callable[[Route, Envelope, str, str | None], Awaitable[None]]
"""Record and publish an asynchronous request: ``accept(route, envelope, client, callback)``."""


@dataclass
class AskContext:
    """Who asks, on whose behalf and how; and what the pipeline learnt of the request."""

    client: str
    purpose: str
    user: str
    correlation: str | None = None
    mode: Literal["sync", "async"] = "sync"
    callback: str | None = None  # an asynchronous request's X-Bus-Callback (checked by accept)
    async_hint: str = "ask it with ?mode=async"  # how this gateway's clients ask asynchronously
    audit_context: dict[str, str] | None = None  # logged if the refusal's entry cannot be written
    # learnt on the way:
    message_id: str | None = None
    subject: str | None = None
    sent: bool = False  # asked of its provider and waited for: timed as an exchange
    audited: bool = False  # the refusal is in the audit log (written here or by the provider)


@dataclass(frozen=True)
class Answer:
    """A request answered (``signed``: the provider's envelope as recorded) or taken (pending)."""

    message_id: str
    correlation: str
    pending: bool = False
    number: str | None = None
    signed: bytes | None = None
    payload: dict[str, Any] | None = None


class Parts(Protocol):
    """What the pipeline uses of a node (``bus.node.wiring.Node``): its exchanger exists once
    the node has started."""

    exchanger: Exchanger | None
    documents: DocumentStore
    audit: AuditLog


class Asking:
    def __init__(self, node: Parts, *, accept: Accept | None = None) -> None:
        self.node = node
        self.accept = accept

    @property
    def documents(self) -> DocumentStore:
        return self.node.documents

    @property
    def audit(self) -> AuditLog:
        return self.node.audit

    @property
    def exchanger(self) -> Exchanger:
        exchanger = self.node.exchanger
        if exchanger is None:
            raise BusUnavailable("the node is not started")
        return exchanger

    async def ask(
        self, route: Route, request: SharedRequest | dict[str, Any], context: AskContext
    ) -> Answer:
        """Ask ``route`` with ``request`` for ``context``; a refusal raises its ``BusError``,
        audited."""
        try:
            return await self._ask(route, request, context)
        except BusError as exc:
            context.message_id = context.message_id or exc.message_id
            if not context.audited:
                await self.record_refusal(route, context, exc.code)
            raise

    async def _ask(
        self, route: Route, request: SharedRequest | dict[str, Any], context: AskContext
    ) -> Answer:
        shared = self._validated(route, request)
        context.subject = shared.subject()
        if route.settings.async_only and context.mode != "async":
            raise AsyncRequired(
                f"{route.service} is answered later than a request may wait "
                f"(within {route.timeout_s:g} s): {context.async_hint}",
                service=route.service,
            )
        envelope = self.exchanger.build(
            route, shared, client=context.client, purpose=context.purpose, user=context.user,
            correlation=context.correlation,
        )
        context.message_id, context.correlation = envelope.id, envelope.correlation
        if context.mode == "async":
            if self.accept is None:
                raise MalformedRequest("this gateway has no asynchronous mode")
            await self.accept(route, envelope, context.client, context.callback)
            return Answer(envelope.id, envelope.correlation, pending=True)
        context.sent = True

        def record(answer: Envelope) -> DocumentRecord:  # where the reply arrives: off the loop
            return self._issue(answer, envelope.id)

        try:
            outcome = await self.exchanger.ask(route, envelope, keep=record)
        except BusError as exc:
            context.audited = recorded_by_provider(exc)
            raise
        document: DocumentRecord = outcome.kept
        return Answer(
            envelope.id, envelope.correlation, number=document.number,
            signed=document.envelope, payload=outcome.envelope.payload,
        )

    def answer_of(self, request: Asked, body: bytes) -> DocumentRecord:
        """The answer ``body`` (a reply taken from the async reply queue, in the transport's
        thread) to the asynchronous request ``request``: verified as its provider's and recorded
        as a document. Raises the ``BusError`` it is: the provider's refusal, or
        ``ProviderInvalidAnswer`` (not a readable envelope, not this request's, not signed by
        its provider, replayed)."""
        try:
            reply = Envelope.from_json(body)
        except ValueError:
            raise ProviderInvalidAnswer(
                "the answer is not a readable envelope", message_id=request.id
            ) from None
        return self._issue(self.exchanger.verify_reply(request, reply), request.id)

    def _issue(self, answer: Envelope, message_id: str) -> DocumentRecord:
        """Record a verified answer to ``message_id`` under a request number."""
        return self.documents.issue(answer, message_id=message_id)

    @staticmethod
    def _validated(route: Route, request: SharedRequest | dict[str, Any]) -> SharedRequest:
        if isinstance(request, route.request_model):
            return request
        try:
            return route.request_model.model_validate(request)
        except ValidationError as exc:
            raise SchemaInvalid.of(exc, f"the request of {route.service}") from None

    async def record_refusal(self, route: Route, context: AskContext, outcome: str) -> None:
        """Write the audit entry of ``context``'s refused request, durable when this returns
        (a gateway calls it for a failure that is not a ``BusError``)."""
        record = self.audit.refusal(
            message_id=context.message_id or new_id(), correlation=context.correlation,
            client=context.client, service=route.service, user=context.user,
            purpose=context.purpose, subject=context.subject, outcome=outcome,
            at=self.exchanger.seal.clock(),
        )
        await self.audit.record_refusal(record, **(context.audit_context or {}))
        context.audited = True
