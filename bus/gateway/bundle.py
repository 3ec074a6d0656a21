"""Bundles (once-only): one request names several documents; every provider is asked at once.

``POST /v1/bundles`` with the usual ``Authorization``, ``X-Bus-Purpose`` and ``X-Bus-User`` (one
application: one purpose and one official for all parts) and optionally ``X-Bus-Correlation``::

    {"parts": [{"service": "civil-registry/birth-certificate/v1", "request": {"pinfl": "…"}},
               {"service": "cadastre/property-ownership/v1", "request": {"pinfl": "…"}}]}

Each part goes the way a single ``POST /v1/services/…`` goes — validated against its service's
request schema, the access right for that service and purpose checked, signed as the client,
asked of the provider within that service's deadline, the signed answer verified and recorded
under a request number — and the parts are asked in parallel, sharing the bundle's correlation.
The answer is 200 with one entry per part, in the order asked::

    {"correlation": "…", "parts": [
      {"service": "…", "status": 200, "message_id": "…", "number": "BUS-…", "answer": {…}},
      {"service": "…", "status": 404, "message_id": "…", "problem": {"code": "no-data", …}}]}

``answer`` is the provider's signed envelope byte for byte as recorded (verify it as a single
answer); ``problem`` an RFC 9457 problem document. So one slow or failing agency does not sink
the rest: the bundle takes as long as its slowest part, not the sum. Refused parts are audited
one by one as the single route's refusals are (a provider's own error answer by the provider);
each part counts in ``bus_exchanges_total`` and, once asked of its provider, in
``bus_exchange_duration_seconds``. Refusals of the bundle as a whole (token, headers, body
shape, more than ``MAX_PARTS`` parts) are one problem, as on any route, audited once (service
``BUNDLE_AUDIT``; before authentication per source, ``bus.gateway.throttle``). A bundle of N
parts costs N requests of the member's rate limit.

``?mode=async`` (needed when a part's service is answered later, such as the ``manual`` route;
else that part is ``async-required``): each part that passes its checks is recorded and sent as
an asynchronous request (``bus.gateway.asynchronous``), one after the other, and the answer is 202
at
once with each part's ``message_id`` and ``location`` (or its refusal) and the bundle's
``Location``, ``GET /v1/bundles/{correlation}``: every kept part as it is now (202 ``pending``,
or its answer or problem) and ``state`` ``pending`` until the last is done. ``X-Bus-Callback``
receives each part's result as it comes. Only the client who asked sees a bundle.
"""
# No "from __future__ import annotations": FastAPI reads the endpoint annotations.

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from bus.config.routes import Route
from bus.core.envelope import SERVICE_PATTERN, new_id
from bus.core.errors import (
    AccessDenied,
    BusError,
    BusUnavailable,
    UnknownDocument,
    UnknownService,
)
from bus.exchange.asking import Answer, AskContext, Asking
from bus.gateway.asynchronous import AsyncRequests
from bus.gateway.i18n import from_scope
from bus.gateway.json_body import StrictJson
from bus.gateway.params import (
    CORRELATION_PATTERN,
    CorrelationHeader,
    ModeQuery,
    PurposeHeader,
    UserHeader,
    caller_value,
)
from bus.gateway.problems import Problem, localized, problem_body
from bus.node.wiring import Node
from bus.policy.ratelimit import RateLimits
from bus.records.async_results import MessageRecord

__all__ = ["BUNDLE_AUDIT", "BUNDLE_PATH", "MAX_PARTS", "bundle_routes"]

log = logging.getLogger("bus.gateway")
BUNDLE_PATH = "/v1/bundles"
BUNDLE_AUDIT = "bus/bundle/v1"  # the audit's service of a refusal of a bundle as a whole
MAX_PARTS = 20


class BundlePart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: str = Field(max_length=200, pattern=SERVICE_PATTERN,
                         description="member/service/version to ask")
    request: dict[str, Any] = Field(description="that service's shared-schema request")


class BundleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parts: list[BundlePart] = Field(min_length=1, max_length=MAX_PARTS)


class PartAnswer(BaseModel):
    service: str
    status: int = Field(description="what a single request would have answered")
    message_id: str | None = None
    number: str | None = Field(default=None, description="request number of the answer")
    answer: dict[str, Any] | None = Field(
        default=None, description="the provider's signed response envelope, as recorded"
    )
    problem: Problem | None = None
    state: Literal["pending"] | None = Field(default=None, description="async: not answered yet")
    location: str | None = Field(default=None, description="async: this part alone")


class BundleAnswer(BaseModel):
    correlation: str
    state: Literal["pending", "done"] | None = Field(
        default=None, description="asynchronous bundles: whether a part still waits")
    location: str | None = Field(default=None, description="where to poll an async bundle")
    parts: list[PartAnswer]


@dataclass
class _Ask:
    """What every part of one bundle shares."""

    client: str
    purpose: str
    user: str
    correlation: str
    mode: Literal["sync", "async"] = "sync"
    callback: str | None = None

    def context(self) -> AskContext:
        """A part's own context for the ask pipeline."""
        return AskContext(
            self.client, self.purpose, self.user, self.correlation, self.mode, self.callback,
            async_hint="ask the bundle with ?mode=async",
            audit_context={"bundle": self.correlation},
        )


def _kept(record: MessageRecord) -> dict[str, Any]:
    """A part of an asynchronous bundle as the result store has it now."""
    part: dict[str, Any] = {"service": record.service, "message_id": record.message_id}
    if record.state == "pending":
        return {**part, "status": 202, "state": "pending"}
    part["status"] = record.status
    if record.status == 200 and record.body is not None:
        return {**part, "number": record.number, "answer": orjson.Fragment(record.body)}
    return {**part, "problem": orjson.loads(record.body or b"{}")}


def _titled(parts: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """The parts, each refused part's problem titled in ``lang`` (``bus.gateway.i18n``)."""
    return [{**p, "problem": localized(p["problem"], lang)} if "problem" in p else p
            for p in parts]


def _part_answer(route: Route, answer: Answer) -> dict[str, Any]:
    part: dict[str, Any] = {"service": route.service, "message_id": answer.message_id}
    if answer.pending:
        return {**part, "status": 202, "location": f"/v1/messages/{answer.message_id}"}
    assert answer.signed is not None
    return {**part, "status": 200, "number": answer.number,
            "answer": orjson.Fragment(answer.signed)}


def bundle_routes(node: Node, auth: Callable[..., Awaitable[str]], limits: RateLimits,
                  asynchronous: AsyncRequests, asking: Asking) -> APIRouter:
    router = APIRouter(tags=["bundles"])
    routes = {r.service: r for r in node.router.routes()}

    async def part(ask: _Ask, asked: BundlePart) -> dict[str, Any]:
        """One part the way a single request goes: its answer, or its refusal as a problem."""
        started = time.perf_counter()
        route = routes.get(asked.service)
        label = asked.service if route is not None else "-"  # metrics labels stay bounded
        context = ask.context()
        try:
            if route is None:  # named back only if it holds no personal identifier
                named = caller_value(asked.service, SERVICE_PATTERN)
                raise UnknownService(f"no service {named!r} on this bus" if named else
                                     "no such service on this bus", service=named)
            answer = await asking.ask(route, asked.request, context)
            result = _part_answer(route, answer)
            code = "accepted" if answer.pending else "ok"
        except Exception as exc:  # each part ends with its own answer, whatever happened
            error = exc if isinstance(exc, BusError) else BusUnavailable(
                "internal error; see the node's log")
            if not isinstance(exc, BusError):
                log.error("internal error in a bundle part", exc_info=exc)
                if route is not None:
                    await asking.record_refusal(route, context, error.code)
            code = error.code
            context.message_id = context.message_id or error.message_id
            if isinstance(error, AccessDenied):
                node.metrics.access_refusals("client", ask.client, label, error.reason).inc()
            result = {"service": asked.service, "status": error.status,
                      "message_id": context.message_id, "problem": problem_body(error)}
        elapsed = time.perf_counter() - started
        node.metrics.exchanges(ask.client, label, code).inc()
        if context.sent:
            node.metrics.exchange_seconds(label).observe(elapsed)
        log.info("exchange", extra={"bus": {
            "message_id": context.message_id, "correlation": ask.correlation,
            "client": ask.client, "service": label, "outcome": code, "status": result["status"],
            "bundle": True, "duration_ms": round(elapsed * 1000, 2)}})
        return result

    @router.post(
        BUNDLE_PATH,
        summary="Ask several services at once (once-only): each part answers on its own",
        response_model=BundleAnswer,
    )
    async def bundle(
        request: Request,
        body: Annotated[BundleRequest, Body()],
        client: Annotated[str, Depends(auth)],
        _json: StrictJson,
        purpose: PurposeHeader,
        user: UserHeader,
        correlation: CorrelationHeader = None,
        mode: ModeQuery = "sync",
    ) -> Response:
        callback = asynchronous.callback_of(request, client) if mode == "async" else None
        if len(body.parts) > 1:
            # the first was taken at sign-in
            await run_in_threadpool(limits.check, client, len(body.parts) - 1)
        ask = _Ask(client, purpose, user, correlation or new_id(), mode, callback)
        if mode == "async":  # each only recorded and sent: one after the other, kept in order
            parts = [await part(ask, p) for p in body.parts]
        else:
            parts = await asyncio.gather(*(part(ask, p) for p in body.parts))
        lang = from_scope(request.scope, node.settings.node.language)
        answer: dict[str, Any] = {"correlation": ask.correlation, "parts": _titled(parts, lang)}
        headers = {"X-Bus-Correlation": ask.correlation, "Content-Language": lang,
                   "Vary": "Accept-Language"}
        status = 200
        if any(p["status"] == 202 for p in parts):  # some are kept: the bundle can be polled
            answer |= {"state": "pending", "location": f"{BUNDLE_PATH}/{ask.correlation}"}
            headers["Location"] = answer["location"]
            status = 202
        return Response(orjson.dumps(answer), status_code=status,
                        media_type="application/json", headers=headers)

    @router.get(BUNDLE_PATH + "/{correlation}", summary="An asynchronous bundle's parts now",
                response_model=BundleAnswer)
    async def progress(correlation: str, request: Request,
                       client: Annotated[str, Depends(auth)]) -> Response:
        """Each part of the asynchronous bundle ``correlation`` that was taken (refused parts
        were answered at once): pending (202), or its answer or problem; only its client sees
        it."""
        kept = await run_in_threadpool(asynchronous.store.conversation, correlation, client)
        if not kept:
            named = caller_value(correlation, CORRELATION_PATTERN)  # echoed if an id only
            raise UnknownDocument(f"no asynchronous bundle {named!r} of yours" if named
                                  else "no such asynchronous bundle of yours")
        pending = any(record.state == "pending" for record in kept)
        lang = from_scope(request.scope, node.settings.node.language)
        return Response(orjson.dumps({
            "correlation": correlation, "state": "pending" if pending else "done",
            "parts": _titled([_kept(record) for record in kept], lang),
        }), media_type="application/json",
            headers={"Content-Language": lang, "Vary": "Accept-Language"})

    return router
