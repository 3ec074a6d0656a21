"""The HTTP gateway of a node: the portal (or any member) asks services here.

``POST /v1/services/{member}/{service}/{version}`` with the shared-schema request as the JSON
body, ``Authorization: Bearer <member API token>``, ``X-Bus-Purpose`` (the legal purpose the
access right requires) and ``X-Bus-User`` (the official or portal user on whose behalf). The
answer is the provider's signed response envelope, byte for byte as verified, with its request
number in ``X-Bus-Request-Number`` (``bus.records.documents``: the answer is recorded under it, and
``GET /verify/{number}`` and ``GET /v1/documents/{number}`` show it, ``bus.gateway.documents``);
refusals are RFC 9457 problem documents with a stable ``type`` per error. One route per
configured service, so ``/docs`` shows each service's real request and response schemas.

Operations: ``GET /metrics`` (Prometheus text format, ``bus.ops.metrics``), ``GET /health/live``
(the process answers) and ``GET /health/ready`` (200 when every readiness check of the node
passes, else 503; the body lists the checks). ``Observe`` counts, times and logs every service
request: one JSON log line per request with message id, correlation, client, service, outcome,
status and duration, never the body or the user.
"""
# No "from __future__ import annotations": FastAPI reads the endpoint annotations built below.

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus.core.envelope import SERVICE_PATTERN
from bus.core.errors import (
    AccessDenied,
    BusError,
    BusUnavailable,
    MalformedRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    SchemaInvalid,
    Unauthenticated,
    UnknownService,
)
from bus.exchange.asking import AskContext
from bus.gateway.asynchronous import AsyncRequests
from bus.gateway.body_limit import BodyLimit
from bus.gateway.bundle import BUNDLE_AUDIT, BUNDLE_PATH, bundle_routes
from bus.gateway.catalog import catalog_routes
from bus.gateway.catalog_page import catalog_page_routes
from bus.gateway.citizens import CITIZEN_LOG_PATH, citizen_routes, citizen_tokens
from bus.gateway.deprecation import DeprecationHeaders, mark_deprecated_routes
from bus.gateway.documents import document_routes
from bus.gateway.idempotency import Idempotency
from bus.gateway.inbox import inbox_routes
from bus.gateway.openapi import truthful_openapi
from bus.gateway.params import caller_value
from bus.gateway.problems import ProblemLanguage, instance_of, problem_response
from bus.gateway.refusals import Refusals
from bus.gateway.server import BodyTimeout
from bus.gateway.service_calls import ServiceCalls, rate_limit, service_endpoint
from bus.gateway.soap.endpoint import soap_routes
from bus.gateway.throttle import AnonymousRefusals, SourceGate
from bus.gateway.tokens import ApiTokens
from bus.node.wiring import Node
from bus.policy.access import CITIZEN_ACCESS_LOG
from bus.policy.ratelimit import RateLimits

__all__ = ["create_app"]

log = logging.getLogger("bus.gateway")
T = TypeVar("T", bound=BaseModel)


class SignedEnvelope(BaseModel, Generic[T]):
    """A response envelope as the provider signed it (see docs/architecture.md, verification)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    correlation: str
    client: str
    service: str
    user: str
    purpose: str
    subject: str | None
    issued_at: str
    expires_at: str
    kind: str
    payload: T
    signature: str


# What a response means when no handler said (e.g. a 404 for a path no route matched).
_OUTCOME_BY_STATUS = {
    200: "ok",
    400: MalformedRequest.code,
    401: Unauthenticated.code,
    403: AccessDenied.code,
    404: UnknownService.code,
    413: PayloadTooLarge.code,
    422: SchemaInvalid.code,
}
_SERVICE_PREFIX = "/v1/services/"


class Observe:
    """Count, time and log each ``POST /v1/services/…``; the handlers below put what they know
    into the ASGI scope (``bus.client``, ``bus.outcome``, ``bus.message_id``, and ``bus.ask``: the
    ``AskContext`` of the ask pipeline, with the message id and correlation it gave).
    Labels are bounded: the service comes from the configured routes (``-`` for any other path).
    """

    def __init__(self, app: ASGIApp, node: Node) -> None:
        self.app = app
        self.metrics = node.metrics
        self.services = {_SERVICE_PREFIX + r.service: r.service for r in node.router.routes()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_SERVICE_PREFIX):
            await self.app(scope, receive, send)
            return
        service = self.services.get(scope["path"], "-")
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        inflight = self.metrics.inflight(service)
        inflight.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, observed)
        finally:
            elapsed = time.perf_counter() - started
            inflight.dec()
            self._record(scope, service, status, elapsed)

    def _record(self, scope: Scope, service: str, status: int, elapsed: float) -> None:
        outcome = scope.get("bus.outcome") or _OUTCOME_BY_STATUS.get(status, BusUnavailable.code)
        client = scope.get("bus.client", "-")
        context: AskContext | None = scope.get("bus.ask")
        message_id = scope.get("bus.message_id") or (context and context.message_id)
        self.metrics.exchanges(client, service, outcome).inc()
        if message_id is not None:  # it was sent to the provider
            self.metrics.exchange_seconds(service).observe(elapsed)
        log.log(
            logging.INFO if status < 500 else logging.WARNING,
            "exchange",
            extra={
                "bus": {
                    "message_id": message_id,
                    "correlation": context.correlation if context else None,
                    "client": client,
                    "service": service,
                    "outcome": outcome,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                }
            },
        )


def _authenticator(tokens: ApiTokens, limits: RateLimits) -> Callable[..., Awaitable[str]]:
    async def authenticate(
        request: Request,
        authorization: Annotated[
            str | None, Header(description="Bearer <member API token>")
        ] = None,
    ) -> str:
        member = tokens.member(authorization)
        request.scope["bus.client"] = member
        await rate_limit(limits, member)  # 429 when over its rate limit
        return member

    return authenticate


def _validation_problem(request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem_response(
            MalformedRequest("request body is not valid JSON"), instance=instance_of(request.scope)
        )
    listed = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")}
        for e in errors
    ]
    headers_wrong = [e for e in listed if e["loc"][:1] == ["header"]]
    if headers_wrong:
        said = [e["msg"].removeprefix("Value error, ") for e in headers_wrong  # the route's
                if e["type"] == "value_error"]  # own words (bus.gateway.params), never a value
        error: BusError = MalformedRequest(
            "; ".join(["missing or invalid header(s): "
                       + ", ".join(e["loc"][-1] for e in headers_wrong), *said]),
            errors=listed,
        )
    else:
        error = SchemaInvalid(f"{len(listed)} field(s) do not match the schema", errors=listed)
    return problem_response(error, instance=instance_of(request.scope))


def create_app(node: Node, *, manage_node: bool = True) -> FastAPI:
    """The FastAPI app of ``node``; with ``manage_node`` it starts and stops the node."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_node:
            await run_in_threadpool(node.start)
        await asynchronous.start()
        try:
            yield
        finally:
            await asynchronous.close()
            if manage_node:
                await run_in_threadpool(node.stop)

    app = FastAPI(
        title=f"Interagency bus — node {node.name}",
        description=__doc__,
        version="1",
        lifespan=lifespan,
    )

    services = {_SERVICE_PREFIX + r.service: r.service for r in node.router.routes()}
    audited = {**services, CITIZEN_LOG_PATH: CITIZEN_ACCESS_LOG,  # paths whose refusals count
               BUNDLE_PATH: BUNDLE_AUDIT}  # a bundle refused as a whole (its parts: each own)

    refusals = Refusals(node, audited=audited, services=services)

    @app.exception_handler(BusError)
    async def bus_error(request: Request, exc: BusError) -> Response:
        return await refusals.answer(request.scope, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        response = _validation_problem(request, exc)
        request.scope["bus.outcome"] = (
            MalformedRequest.code if response.status_code == 400 else SchemaInvalid.code
        )
        await refusals.record(request.scope, request.scope["bus.outcome"])
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            request.scope["bus.outcome"] = UnknownService.code
            return problem_response(UnknownService("no such route on this node"),
                                    instance=instance_of(request.scope))
        error: BusError = (
            MethodNotAllowed(f"{request.method} is not answered here")
            if exc.status_code == 405 else MalformedRequest(str(exc.detail)[:200])
        )
        request.scope["bus.outcome"] = error.code
        await refusals.record(request.scope, error.code)
        return problem_response(error, instance=instance_of(request.scope), status=exc.status_code,
                                headers=dict(exc.headers or {}))  # 405: Allow

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("internal error", exc_info=exc)
        return problem_response(
            BusUnavailable("internal error; see the node's log"),
            instance=instance_of(request.scope),
            status=500,
        )

    limits = RateLimits(node.settings.members, node.state)
    tokens = ApiTokens(node.settings.members, node.seal.hosts)
    auth = _authenticator(tokens, limits)
    asynchronous = AsyncRequests(node)
    asking = asynchronous.asking  # the one pipeline: asynchronous mode through ``asynchronous``
    for route in node.router.routes():
        app.post(
            f"/v1/services/{route.service}",
            summary=route.settings.title or f"Ask {route.service}",
            tags=[route.provider],
            responses={200: {"model": SignedEnvelope[route.response_model]}},  # type: ignore[name-defined]
        )(service_endpoint(route, auth, asking))

    app.include_router(bundle_routes(node, auth, limits, asynchronous, asking))
    id_tokens = citizen_tokens(node)  # one verifier (and JWKS cache) for the report and documents
    app.include_router(document_routes(node, auth, id_tokens))
    app.include_router(soap_routes(node, auth, asking, asynchronous))
    app.include_router(asynchronous.routes(auth))
    app.include_router(citizen_routes(node, auth, id_tokens))
    app.include_router(inbox_routes(node))
    app.include_router(catalog_routes(node.settings))
    app.include_router(catalog_page_routes(node.settings))

    @app.post("/v1/services/{service:path}", include_in_schema=False)
    async def unknown(service: str, client: Annotated[str, Depends(auth)]) -> Response:
        named = caller_value(service, SERVICE_PATTERN)  # echoed only if it is a service id
        raise UnknownService(f"no service {named!r} on this bus" if named else
                             "no such service on this bus (not a member/service/vN id)",
                             service=named)

    @app.get("/v1/services", tags=["catalog"])
    async def catalog(client: Annotated[str, Depends(auth)]) -> list[dict[str, Any]]:
        """The services this client holds an access right to, with the purposes allowed."""
        out = []
        for route in node.router.routes():
            purposes = sorted(
                {
                    p
                    for r in node.settings.access
                    if r.client == client and r.service == route.service
                    for p in r.purpose
                }
            )
            if purposes:
                out.append(
                    {
                        "service": route.service,
                        "purposes": purposes,
                        "request_schema": route.request_model.__name__,
                        "response_schema": route.response_model.__name__,
                    }
                )
        return out

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        """The process answers (a Kubernetes liveness probe)."""
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"])
    async def ready() -> Response:
        """Every readiness check passes: 200, else 503 (a Kubernetes readiness probe)."""
        results = await run_in_threadpool(node.readiness)
        ok = bool(results) and all(r.ok for r in results)
        return JSONResponse(
            {
                "status": "ready" if ok else "not-ready",
                "checks": [{"name": r.name, "ok": r.ok, "detail": r.detail} for r in results],
            },
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", tags=["health"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics of this node (text exposition format)."""
        body = await run_in_threadpool(generate_latest, node.metrics.exposition)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    truthful_openapi(app, node)  # bus.gateway.openapi: every answer each route can give
    mark_deprecated_routes(app, node.settings)
    leases = {_SERVICE_PREFIX + r.service: Idempotency.lease_for(r.timeout_s)
              for r in node.router.routes()}
    leases[BUNDLE_PATH] = max(leases.values(), default=Idempotency.lease_for(0))
    calls = {route.path: (node.router.route(services[route.path]), route) for route in app.routes
             if isinstance(route, APIRoute) and route.path in services}
    app.add_middleware(  # innermost: well-formed service calls without FastAPI's work
        ServiceCalls, routes=calls, tokens=tokens, limits=limits, asking=asking,
        refusals=refusals)
    app.add_middleware(Idempotency, state=node.state, settings=node.settings, paths=leases)
    app.add_middleware(BodyLimit, limit=node.settings.node.max_body_bytes)  # outside: bounded
    app.add_middleware(DeprecationHeaders, settings=node.settings)
    app.add_middleware(BodyTimeout, timeout_s=node.settings.http.body_timeout_s)  # 408
    app.add_middleware(  # per-source throttles; refusals before authentication, aggregated
        SourceGate, settings=node.settings.http, metrics=node.metrics,
        services=set(services.values()),
        refusals=AnonymousRefusals(node.audit, node.metrics, node.seal.clock))
    app.add_middleware(ProblemLanguage, default=node.settings.node.language)  # every problem
    app.add_middleware(Observe, node=node)  # outermost: sees the 413s of BodyLimit too
    return app
