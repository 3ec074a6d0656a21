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
shape, more than ``MAX_PARTS`` parts) are one problem, as on any route. A bundle of N parts
costs N requests of the member's rate limit. A service answered later (``async_only``, such as
the ``manual`` route) is refused in its part with ``async-required``: ask it on its own with
``?mode=async``.
"""
# No "from __future__ import annotations": FastAPI reads the endpoint annotations.

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Header
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from bus.envelope import new_id
from bus.errors import (
    AccessDenied,
    AsyncRequired,
    BusError,
    BusUnavailable,
    SchemaInvalid,
    UnknownService,
)
from bus.exchange import recorded_by_provider
from bus.node import Node
from bus.problems import Problem, problem_body
from bus.ratelimit import RateLimits

__all__ = ["BUNDLE_PATH", "MAX_PARTS", "bundle_routes"]

log = logging.getLogger("bus.gateway")
BUNDLE_PATH = "/v1/bundles"
MAX_PARTS = 20


class BundlePart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: str = Field(max_length=200, description="member/service/version to ask")
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


class BundleAnswer(BaseModel):
    correlation: str
    parts: list[PartAnswer]


@dataclass
class _Ask:
    """What every part of one bundle shares."""

    client: str
    purpose: str
    user: str
    correlation: str


def bundle_routes(node: Node, auth: Callable[..., Awaitable[str]], limits: RateLimits
                  ) -> APIRouter:
    router = APIRouter(tags=["bundles"])
    routes = {r.service: r for r in node.router.routes()}

    async def part(ask: _Ask, asked: BundlePart) -> dict[str, Any]:
        started = time.perf_counter()
        route = routes.get(asked.service)
        label = asked.service if route is not None else "-"  # metrics labels stay bounded
        message_id: str | None = None
        subject: str | None = None
        answered = sent = False
        try:
            if route is None:
                raise UnknownService(f"no service {asked.service!r} on this bus",
                                     service=asked.service)
            try:
                shared = route.request_model.model_validate(asked.request)
            except ValidationError as exc:
                raise SchemaInvalid.of(exc, f"the request of {route.service}") from None
            subject = shared.subject()
            if route.settings.async_only:
                raise AsyncRequired(f"{route.service} is answered later: ask it on its own "
                                    "with ?mode=async", service=route.service)
            assert node.exchanger is not None
            envelope = node.exchanger.build(route, shared, client=ask.client,
                                            purpose=ask.purpose, user=ask.user,
                                            correlation=ask.correlation)
            message_id, sent = envelope.id, True
            try:
                outcome = await node.exchanger.ask(route, envelope)
            except BusError as exc:
                answered = recorded_by_provider(exc)
                raise
            document = await run_in_threadpool(
                node.documents.issue, outcome.envelope, message_id=envelope.id
            )
            code, status = "ok", 200
            result: dict[str, Any] = {
                "service": route.service, "status": 200, "message_id": envelope.id,
                "number": document.number, "answer": orjson.Fragment(document.envelope),
            }
        except Exception as exc:  # each part ends with its own answer, whatever happened
            error = exc if isinstance(exc, BusError) else BusUnavailable(
                "internal error; see the node's log")
            if not isinstance(exc, BusError):
                log.error("internal error in a bundle part", exc_info=exc)
            code, status = error.code, error.status
            message_id = message_id or error.message_id
            if route is not None and not answered:
                await node.audit.record_refusal(node.audit.refusal(
                    message_id=message_id or new_id(), correlation=ask.correlation,
                    client=ask.client, service=route.service, user=ask.user,
                    purpose=ask.purpose, subject=subject, outcome=code, at=node.seal.clock(),
                ), bundle=ask.correlation)
            if isinstance(error, AccessDenied):
                node.metrics.access_refusals("client", ask.client, label, error.reason).inc()
            result = {"service": asked.service, "status": status, "message_id": message_id,
                      "problem": problem_body(error)}
        elapsed = time.perf_counter() - started
        node.metrics.exchanges(ask.client, label, code).inc()
        if sent:
            node.metrics.exchange_seconds(label).observe(elapsed)
        log.info("exchange", extra={"bus": {
            "message_id": message_id, "correlation": ask.correlation, "client": ask.client,
            "service": label, "outcome": code, "status": status, "bundle": True,
            "duration_ms": round(elapsed * 1000, 2)}})
        return result

    @router.post(
        BUNDLE_PATH,
        summary="Ask several services at once (once-only): each part answers on its own",
        response_model=BundleAnswer,
    )
    async def bundle(
        body: Annotated[BundleRequest, Body()],
        client: Annotated[str, Depends(auth)],
        purpose: Annotated[str, Header(alias="X-Bus-Purpose", max_length=100,
                                       description="purpose code the access rights require")],
        user: Annotated[str, Header(alias="X-Bus-User", max_length=200,
                                    description="official or portal user on whose behalf")],
        correlation: Annotated[
            str | None, Header(alias="X-Bus-Correlation", pattern=r"^[0-9a-f-]{36}$")
        ] = None,
    ) -> Response:
        if len(body.parts) > 1:
            limits.check(client, cost=len(body.parts) - 1)  # the first was taken at sign-in
        ask = _Ask(client, purpose, user, correlation or new_id())
        parts = await asyncio.gather(*(part(ask, p) for p in body.parts))
        return Response(
            orjson.dumps({"correlation": ask.correlation, "parts": parts}),
            media_type="application/json",
            headers={"X-Bus-Correlation": ask.correlation},
        )

    return router
