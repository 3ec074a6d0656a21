"""How a node's HTTP server meets slow and greedy clients (the ``http:`` settings).

``server_options(settings)`` is what ``run_bus.py serve`` and the demo give uvicorn:

* ``GuardedH11Protocol`` (uvicorn's h11 protocol with a deadline for the request head): a
  connection whose request line and headers have not all arrived ``header_timeout_s`` after it
  opened — or after the previous answer on it — is closed. uvicorn alone has no such limit: a
  client sending a header byte now and then would hold a connection for ever (slowloris);
* ``timeout_keep_alive`` (``keep_alive_s``): an idle keep-alive connection is closed;
* ``limit_concurrency`` (``max_connections``): beyond that many connections and requests at
  once, uvicorn answers 503 at once instead of queueing without bound;
* ``h11_max_incomplete_event_size`` (``max_header_bytes``): a longer request head is a 400.

``BodyTimeout`` (an ASGI middleware the app installs) bounds the body the same way: a request
whose body has not fully arrived ``body_timeout_s`` after its head is answered 408
``request-timeout`` (a problem document) and the connection closed. Normal requests on other
connections are served meanwhile: nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from bus.config.http import HttpSettings
from bus.core.errors import RequestTimeout
from bus.gateway.problems import problem_response

__all__ = ["BodyTimeout", "GuardedH11Protocol", "guarded_protocol", "server_options"]


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head is late."""

    header_timeout_s: float = 10.0
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the whole head is in: the app has it
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()  # the next request's head has the same time, from now

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.header_timeout_s, self._head_late)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_late(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("request head not received in %.1f s: connection closed",
                             self.header_timeout_s)
            self.transport.close()


def guarded_protocol(header_timeout_s: float) -> type[GuardedH11Protocol]:
    """A ``GuardedH11Protocol`` class with this deadline (uvicorn takes a class)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,),
                {"header_timeout_s": header_timeout_s})


def server_options(settings: HttpSettings) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.Config`` (or ``uvicorn.run``) for ``settings``."""
    return {
        "http": guarded_protocol(settings.header_timeout_s),
        "timeout_keep_alive": max(1, math.ceil(settings.keep_alive_s)),
        "limit_concurrency": settings.max_connections,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }


class _BodyLate(Exception):
    pass


class BodyTimeout:
    """Answer 408 when a request's body is not in ``timeout_s`` after its head."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        done = False
        started = False

        async def timed() -> Message:
            nonlocal done
            if done:  # the body is in: later receives wait for the disconnect as usual
                return await receive()
            try:  # a timer, not a task per receive (as wait_for would make)
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _BodyLate from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed, sending)
        except _BodyLate:
            if started:
                raise
            error = RequestTimeout(f"request body not received within {self.timeout_s:g} s")
            scope["bus.outcome"] = error.code
            response = problem_response(error, headers={"Connection": "close"})
            await response(scope, receive, send)
