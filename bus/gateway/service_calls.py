"""``POST /v1/services/{member}/{service}/{version}``: the FastAPI route of each service, and
the fast path that answers the well-formed calls of those routes without FastAPI's per-request
work.

``service_endpoint`` is the route FastAPI declares (so ``/docs`` and the OpenAPI document show
each service's real request and response), with its parameters (``bus.gateway.params``), the
token dependency and the strict JSON dependency (``bus.gateway.json_body``). Its checks run in
FastAPI's order: the body parsed, the token (and the member's rate limit), the strict JSON
rules, the headers and the query, the body against the service's request model.

``ServiceCalls`` is an ASGI middleware, the innermost of the gateway's own (inside ``Observe``,
the throttles, the body limits and ``Idempotency``, so those see every call as before). For a
``POST`` to a service route it reads the body and makes the same checks as the route, without
side effects: one ``Authorization``, ``Content-Type``, ``X-Bus-Purpose``, ``X-Bus-User``,
``X-Bus-Correlation`` and ``X-Bus-Callback`` header at most, a query string of nothing or
``mode=sync|async``, a token of a hosted member, ``Content-Type: application/json``, a body
that passes ``read_json``, headers that match their patterns, a body valid for the request
model. A call
that passes them all is asked here (rate limit, ask pipeline, answer) exactly as the route would;
any other is handed, with the body it sent, to the FastAPI app, whose route then refuses it as it
always did. So every refusal is the route's own, in the route's order, and a call passing the
checks here would have passed them there: this path only skips the framework's work (routing,
dependency solving, a second JSON parse, exception middleware), about 0.2-0.3 ms of CPU a call.
A ``BusError`` of the rate limit or the pipeline is answered by ``Refusals.answer``, the same
function the app's exception handler calls.
"""
# No "from __future__ import annotations": FastAPI reads the endpoint annotations built below.

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus.config.routes import Route
from bus.core.errors import BusError, Unauthenticated
from bus.exchange.asking import AskContext, Asking
from bus.gateway.asynchronous import AsyncRequests
from bus.gateway.json_body import StrictJson, read_json
from bus.gateway.params import (
    CORRELATION_PATTERN,
    PURPOSE_PATTERN,
    USER_PATTERN,
    CorrelationHeader,
    ModeQuery,
    PurposeHeader,
    UserHeader,
    personal_identifier,
)
from bus.gateway.refusals import Refusals
from bus.gateway.tokens import ApiTokens
from bus.policy.ratelimit import RateLimits
from schemas import SharedRequest

__all__ = ["ServiceCalls", "answer", "rate_limit", "service_endpoint"]

_HEADERS = (b"authorization", b"content-type", b"x-bus-purpose", b"x-bus-user",
            b"x-bus-correlation", b"x-bus-callback")
_MODES = {b"": "sync", b"mode=sync": "sync", b"mode=async": "async"}
# the media types taken here; any other the route decides on (415, or JSON by another name)
_JSON = frozenset({"application/json", "application/json; charset=utf-8"})
_PURPOSE = re.compile(PURPOSE_PATTERN)
_USER = re.compile(USER_PATTERN)
_CORRELATION = re.compile(CORRELATION_PATTERN)


async def rate_limit(limits: RateLimits, member: str) -> None:
    """Take a token of ``member``'s rate limit (``RateLimited`` when none is left); the node
    state is asked off the event loop, and only for a member that has a limit."""
    if limits.applies(member):
        await run_in_threadpool(limits.check, member)


async def answer(
    asking: Asking, route: Route, request: SharedRequest, context: AskContext, scope: Scope
) -> Response:
    """Ask ``route`` for ``context`` and answer: the signed answer byte for byte as recorded,
    with its request number, or a 202 for an asynchronous request (a refusal raises)."""
    scope["bus.ask"] = context  # the refusal handler and Observe read it
    asked = await asking.ask(route, request, context)
    if asked.pending:  # bus.gateway.asynchronous: 202 now, the result kept and pushed
        scope["bus.outcome"] = "accepted"  # counted as taken, not as an answer
        return AsyncRequests.accepted(asked.message_id)
    assert asked.signed is not None and asked.number is not None
    return Response(
        asked.signed,  # the signed answer, byte for byte as recorded
        media_type="application/json",
        headers={"X-Bus-Message-Id": asked.message_id, "X-Bus-Request-Number": asked.number},
    )


def service_endpoint(route: Route, auth: Callable[..., Awaitable[str]], asking: Asking) -> Any:
    """The FastAPI endpoint of ``route``."""
    request_model = route.request_model

    async def ask(
        request: Request,
        body: request_model,  # type: ignore[valid-type]
        client: Annotated[str, Depends(auth)],
        _json: StrictJson,
        purpose: PurposeHeader,
        user: UserHeader,
        correlation: CorrelationHeader = None,
        mode: ModeQuery = "sync",
    ) -> Response:
        context = AskContext(
            client, purpose, user, correlation, mode,
            callback=request.headers.get("x-bus-callback") if mode == "async" else None,
        )
        return await answer(asking, route, body, context, request.scope)

    ask.__name__ = "ask_" + route.service.replace("/", "_").replace("-", "_")
    return ask


class _Call:
    """A call that passed every check of its route."""

    __slots__ = ("callback", "correlation", "member", "mode", "purpose", "request", "user")

    def __init__(self, member: str, request: SharedRequest, headers: dict[bytes, str],
                 mode: str) -> None:
        self.member, self.request, self.mode = member, request, mode
        self.purpose = headers[b"x-bus-purpose"]
        self.user = headers[b"x-bus-user"]
        self.correlation = headers.get(b"x-bus-correlation")
        self.callback = headers.get(b"x-bus-callback") if mode == "async" else None


class ServiceCalls:
    """See the module docstring. ``routes``: each service route's path → its ``Route`` and the
    app's route object (what a problem's ``instance`` names)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: dict[str, tuple[Route, Any]],
        tokens: ApiTokens,
        limits: RateLimits,
        asking: Asking,
        refusals: Refusals,
    ) -> None:
        self.app = app
        self.routes = routes
        self.tokens = tokens
        self.limits = limits
        self.asking = asking
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = (
            self.routes.get(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path")
            else None
        )
        if found is None:
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        route, app_route = found
        call = self._checked(scope, route, received)
        if call is None:  # the route refuses it, as ever
            await self.app(scope, _replaying(received, receive), send)
            return
        scope["route"] = app_route  # as the router sets it: a problem's instance
        scope["bus.client"] = call.member
        try:
            await rate_limit(self.limits, call.member)
            context = AskContext(call.member, call.purpose, call.user, call.correlation,
                                 "async" if call.mode == "async" else "sync",
                                 callback=call.callback)
            response = await answer(self.asking, route, call.request, context, scope)
        except BusError as exc:
            response = await self.refusals.answer(scope, exc)
        await response(scope, receive, send)

    def _checked(self, scope: Scope, route: Route, received: list[Message]) -> _Call | None:
        """The call, if it passes every check of the route; else None (nothing done)."""
        mode = _MODES.get(scope.get("query_string", b""))
        if mode is None or received[-1]["type"] != "http.request":
            return None
        headers: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            if name in _HEADERS:
                if name in headers:
                    return None  # sent twice: which one the route reads is the route's affair
                headers[name] = value.decode("latin-1")
        purpose, user = headers.get(b"x-bus-purpose"), headers.get(b"x-bus-user")
        correlation = headers.get(b"x-bus-correlation")
        if (
            purpose is None or _PURPOSE.fullmatch(purpose) is None
            or user is None or _USER.fullmatch(user) is None or personal_identifier(user)
            or (correlation is not None and _CORRELATION.fullmatch(correlation) is None)
        ):
            return None
        try:
            member = self.tokens.member(headers.get(b"authorization"))
        except Unauthenticated:
            return None
        body = b"".join(m.get("body", b"") for m in received)
        content_type = headers.get(b"content-type")
        if not body or content_type is None or content_type.lower() not in _JSON:
            return None
        try:
            value = read_json(body, content_type)
            request = route.request_model.model_validate(value)
        except (BusError, ValidationError):
            return None
        return _Call(member, request, headers, mode)


def _replaying(received: list[Message], receive: Receive) -> Receive:
    """``receive`` giving back the messages already read first."""
    pending = list(received)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
