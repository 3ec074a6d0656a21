"""Asynchronous requests on the HTTP gateway: ``?mode=async``, polling and callbacks.

``POST /v1/services/{service}?mode=async`` is checked exactly like a synchronous request (token,
schema, purpose, access right) and then answered at once with ``202 Accepted``, the message id
(body and ``X-Bus-Message-Id``) and ``Location: /v1/messages/{id}``; the exchange goes on in the
background and its result is kept in ``bus.messages.MessageStore``.

``GET /v1/messages/{id}`` (the asking client's token; anyone else gets 404): ``202`` with
``{"message_id", "state": "pending"}`` while it runs, then the result as the synchronous call
would have answered it — the provider's signed envelope with ``X-Bus-Request-Number``, or the
problem document with its status.

``X-Bus-Callback: https://…`` on the POST: the result is also ``POST``ed there, the body
exactly as ``GET /v1/messages/{id}`` returns it (a 200 result is the provider's signed
envelope, verifiable with its certificate), with ``X-Bus-Message-Id``, ``X-Bus-Status`` and
``X-Bus-Request-Number``. A delivery that fails (no connection, not 2xx) is retried with a
doubling delay (``CALLBACK_DELAYS_S``), then given up (logged; the result stays pollable).
Only URLs the node's callback policy allows are taken, and each attempt connects only to an
address the policy allows (``bus.callbacks``; settings ``callbacks:``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from bus.callbacks import CallbackPolicy
from bus.envelope import Envelope
from bus.errors import BusError, BusUnavailable, CallbackRefused, UnknownDocument
from bus.messages import MessageStore
from bus.node import Node
from bus.problems import PROBLEM_MEDIA_TYPE, problem_response
from bus.router import Route

__all__ = ["CALLBACK_DELAYS_S", "AsyncRequests"]

log = logging.getLogger("bus.gateway")
CALLBACK_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # waits between callback attempts


def _problem(error: BusError) -> tuple[int, bytes]:
    response = problem_response(error)
    return response.status_code, bytes(response.body)


class AsyncRequests:
    """The asynchronous side of one gateway: its store, running exchanges and callbacks."""

    def __init__(
        self,
        node: Node,
        *,
        callback_delays: tuple[float, ...] = CALLBACK_DELAYS_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.node = node
        self.callback_delays = callback_delays
        self._transport = transport
        self._store: MessageStore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.callbacks = CallbackPolicy(node.settings.callbacks)

    @property
    def store(self) -> MessageStore:
        if self._store is None:
            self._store = MessageStore(self.node.documents.path.with_name("messages.db"))
            _, body = _problem(BusUnavailable(
                "the node restarted before the answer arrived; ask again"
            ))
            self._store.close_interrupted(body, PROBLEM_MEDIA_TYPE)
        return self._store

    def callback_of(self, request: Request) -> str | None:
        """``X-Bus-Callback`` if the node's callback policy allows it (``bus.callbacks``)."""
        url = request.headers.get("x-bus-callback")
        if url is None:
            return None
        self.callbacks.check(url)  # 400 malformed-request, 422 callback-refused
        return url

    async def submit(
        self, route: Route, envelope: Envelope, client: str, callback: str | None
    ) -> Response:
        """Record the request, start the exchange, answer 202."""
        await run_in_threadpool(
            self.store.create, envelope.id, client=client, service=route.service,
            callback=callback,
        )
        task = asyncio.create_task(self._complete(route, envelope, callback))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        location = f"/v1/messages/{envelope.id}"
        return JSONResponse(
            {"message_id": envelope.id, "state": "pending", "location": location},
            status_code=202,
            headers={"Location": location, "X-Bus-Message-Id": envelope.id},
        )

    async def _complete(self, route: Route, envelope: Envelope, callback: str | None) -> None:
        number: str | None = None
        try:
            assert self.node.exchanger is not None
            outcome = await self.node.exchanger.ask(route, envelope)
            document = await run_in_threadpool(
                self.node.documents.issue, outcome.envelope, message_id=envelope.id
            )
            status, body, media_type = 200, document.envelope, "application/json"
            number = document.number
        except BusError as exc:
            exc.message_id = exc.message_id or envelope.id
            status, body = _problem(exc)
            media_type = PROBLEM_MEDIA_TYPE
        except Exception:
            log.exception("asynchronous exchange failed", extra={"bus": {
                "message_id": envelope.id, "service": route.service}})
            _, body = _problem(BusUnavailable("internal error; see the node's log"))
            media_type = PROBLEM_MEDIA_TYPE
        await run_in_threadpool(
            self.store.finish, envelope.id, status=status, media_type=media_type, body=body,
            number=number,
        )
        if callback is not None:
            await self._deliver(callback, envelope.id, status, media_type, body, number)

    async def _deliver(self, url: str, message_id: str, status: int, media_type: str,
                       body: bytes, number: str | None) -> None:
        headers = {"Content-Type": media_type, "X-Bus-Message-Id": message_id,
                   "X-Bus-Status": str(status)}
        if number is not None:
            headers["X-Bus-Request-Number"] = number
        async with httpx.AsyncClient(transport=self._transport, trust_env=False,
                                     follow_redirects=False, timeout=10) as client:
            for attempt, delay in enumerate((0.0, *self.callback_delays), 1):
                await asyncio.sleep(delay)
                try:  # resolved and checked right before connecting, to the checked address
                    target = await self.callbacks.target(url)
                    r = await client.post(target.url, content=body,
                                          headers={**headers, **target.headers},
                                          extensions=target.extensions)
                    if 200 <= r.status_code < 300:
                        return
                    why = str(r.status_code)
                except CallbackRefused as exc:  # the policy's answer will not change: stop
                    log.error("callback refused", extra={"bus": {
                        "message_id": message_id, "attempt": attempt, "outcome": exc.reason}})
                    return
                except (httpx.HTTPError, OSError) as exc:  # OSError: the name did not resolve
                    why = type(exc).__name__
                log.warning("callback not delivered", extra={"bus": {
                    "message_id": message_id, "attempt": attempt, "outcome": why}})
        log.error("callback given up", extra={"bus": {"message_id": message_id}})

    def routes(self, auth: Any) -> APIRouter:
        router = APIRouter(tags=["messages"])

        @router.get("/v1/messages/{message_id}")
        async def message(message_id: str, request: Request) -> Response:
            """The state or result of an asynchronous request (only for the client who asked)."""
            client = await auth(request, request.headers.get("authorization"))
            record = await run_in_threadpool(self.store.get, message_id, client)
            if record is None:
                raise UnknownDocument(f"no asynchronous request {message_id!r} of yours")
            if record.state == "pending":
                return JSONResponse({"message_id": message_id, "state": "pending"},
                                    status_code=202, headers={"Retry-After": "1"})
            headers = {"X-Bus-Message-Id": message_id}
            if record.number:
                headers["X-Bus-Request-Number"] = record.number
            return Response(record.body or b"", status_code=record.status or 500,
                            media_type=record.media_type, headers=headers)

        return router

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._store is not None:
            self._store.close()
            self._store = None
