"""Asynchronous requests on the HTTP gateway: ``?mode=async``, polling and callbacks.

``POST /v1/services/{service}?mode=async`` is checked exactly like a synchronous request (token,
schema, purpose, access right), recorded in ``bus.records.async_results.MessageStore``, signed and
published
with its answer going to this node's durable async reply queue ``reply.<node>.async``, and
answered at once with ``202 Accepted``, the message id (body and ``X-Bus-Message-Id``) and
``Location: /v1/messages/{id}``. A service that is answered later than a synchronous request
may wait (a ``manual`` service, whose operator answers, or ``timeout_s`` above 300 s) is asked
only this way (``async-required`` otherwise).

The answer is taken from the async reply queue by whichever process of this node runs then —
also one started after the node stopped (nothing is awaited in memory): it is verified as the
provider's and recorded as a document (``Asking.answer_of``, the pipeline's one place for
that), and stored with the row. A row whose deadline passed is
finished as 504 ``deadline-exceeded`` (checked every ``SWEEP_S``). A verified answer to a row
finished with an error (an operator's ``dlq replay`` of the dead-lettered request, run again by
the provider) replaces that error, and its callback is delivered again: the asker gets what
the audit log says was handed out.

``GET /v1/messages/{id}`` (the asking client's token; anyone else gets 404): ``202`` with
``{"message_id", "state": "pending"}`` while it runs, then the result as the synchronous call
would have answered it — the provider's signed envelope with ``X-Bus-Request-Number``, or the
problem document with its status.

``X-Bus-Callback: https://…`` on the POST: the result is also ``POST``ed there, the body
exactly as ``GET /v1/messages/{id}`` returns it (a 200 result is the provider's signed
envelope, verifiable with its certificate), with ``X-Bus-Message-Id``, ``X-Bus-Status`` and
``X-Bus-Request-Number``, and ``X-Bus-Signature``: a detached JWS (RFC 7797) over the body
bytes by the client member the node acts for, so the receiver can check the callback came from
its bus (verify it with its own certificate; error results are signed only this way). A
delivery that fails (no connection, not 2xx) is retried with a
doubling delay (``CALLBACK_DELAYS_S``), then given up (logged; the result stays pollable). A
callback not delivered when the node stopped is delivered after it starts again (by its
primary worker). With a shared PostgreSQL state every gateway resumes the callbacks due when it
starts, so each delivery takes a lease in the node state first (``callback/<id>``,
``CALLBACK_LEASE_S``): one gateway delivers, the others leave it. Only URLs the
node's callback policy allows are taken, and each attempt connects only to an address the
policy allows (``bus.policy.callbacks``; settings ``callbacks:``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine
from typing import Any

import httpx
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from bus.config.routes import Route
from bus.core.envelope import Envelope
from bus.core.errors import (
    BusError,
    CallbackRefused,
    DeadlineExceeded,
    UnknownDocument,
)
from bus.exchange.asking import Asking
from bus.gateway.params import CORRELATION_PATTERN, caller_value
from bus.gateway.problems import PROBLEM_MEDIA_TYPE, problem_response
from bus.node.wiring import Node
from bus.policy.callbacks import CallbackPolicy
from bus.records.async_results import MessageStore
from bus.records.retention import messages_path
from bus.transport import Delivery, Message, Subscription, reply_queue

__all__ = ["CALLBACK_DELAYS_S", "CALLBACK_LEASE_S", "SWEEP_S", "AsyncRequests", "async_reply_queue"]

log = logging.getLogger("bus.gateway")
CALLBACK_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # waits between callback attempts
CALLBACK_LEASE_S = 120.0  # longer than every attempt of one delivery (10 s each) and the waits
SWEEP_S = 1.0  # how often overdue requests are looked for
_WAIT_GRACE_S = 0.25  # an answer may still arrive this long after the deadline


def _problem(error: BusError) -> tuple[int, bytes]:
    response = problem_response(error)
    return response.status_code, bytes(response.body)


def async_reply_queue(node: str) -> str:
    """Where the answers to a node's asynchronous requests wait (durable, across restarts).

    A reply queue (``reply.<node>.async``): the transport drops an answer that arrives after its
    request expired instead of dead-lettering it (``bus.transport.base.is_reply_queue``)."""
    return f"{reply_queue(node)}.async"


class AsyncRequests:
    """The asynchronous side of one gateway: its store, reply consumer, sweeper and callbacks."""

    def __init__(
        self,
        node: Node,
        *,
        callback_delays: tuple[float, ...] = CALLBACK_DELAYS_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.node = node
        self.callback_delays = callback_delays
        self.queue = async_reply_queue(node.name)
        self._transport = transport
        self._store: MessageStore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: Subscription | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.callbacks = CallbackPolicy(node.settings.callbacks, member_hosts={
            code: m.callback_hosts for code, m in node.settings.members.items()
            if m.callback_hosts is not None})
        # the gateway's ask pipeline, asynchronous mode through this side; its ``answer_of``
        # verifies and records the answers taken from the async reply queue
        self.asking = Asking(node, accept=self.accept)

    @property
    def store(self) -> MessageStore:
        if self._store is None:
            self._store = MessageStore(
                messages_path(self.node.documents.path), shared=self.node.state.shared
            )
        return self._store

    async def start(self) -> None:
        """Take answers from the async reply queue, finish overdue rows, resume callbacks."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        transport = self.node.transport
        # Callbacks left over from before are resumed *before* answers are taken: an answer
        # taken first finishes its row and starts its callback, which the list of those due
        # would then start a second time. One worker of a node resumes them (bus.node.wiring).
        if self.node.primary:
            for record in await run_in_threadpool(self.store.callbacks_due):
                self._spawn(self._callback(record.message_id))
        await run_in_threadpool(transport.declare, self.queue)
        self._subscription = await run_in_threadpool(
            transport.consume, self.queue, self._on_reply, prefetch=4
        )
        self._spawn(self._sweep())

    def callback_of(self, request: Request, client: str) -> str | None:
        """``X-Bus-Callback`` if the node's callback policy allows it for ``client``
        (``bus.policy.callbacks``)."""
        url = request.headers.get("x-bus-callback")
        if url is None:
            return None
        self.callbacks.check(url, client=client)  # 400 malformed-request, 422 callback-refused
        return url

    async def accept(
        self, route: Route, envelope: Envelope, client: str, callback: str | None
    ) -> None:
        """Take an asynchronous request (``Asking``'s ``accept``): check its callback against
        the node's policy, record it, publish it. A request that cannot be published is not
        kept: its client is told."""
        if callback is not None:
            self.callbacks.check(callback, client=client)  # 400 / 422 callback-refused
        await self.start()
        assert self.node.exchanger is not None
        await run_in_threadpool(
            self.store.create, envelope.id, client=client, service=route.service,
            correlation=envelope.correlation, expires_at=envelope.expires_at.timestamp(),
            callback=callback,
        )
        try:
            await run_in_threadpool(
                self.node.exchanger.post, route, envelope, reply_to=self.queue
            )
        except BaseException:
            await run_in_threadpool(self.store.delete, envelope.id)  # the client is told
            raise

    @staticmethod
    def accepted(message_id: str) -> Response:
        """The 202 of a request taken: where to poll for its result."""
        location = f"/v1/messages/{message_id}"
        return JSONResponse(
            {"message_id": message_id, "state": "pending", "location": location},
            status_code=202,
            headers={"Location": location, "X-Bus-Message-Id": message_id},
        )

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_reply(self, delivery: Delivery) -> None:
        """An answer on the async reply queue (a transport thread): settle its request."""
        with delivery.process():
            message_id = self._settle(delivery.message)
            if message_id is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(
                    lambda: self._spawn(self._callback(message_id))
                )

    def _settle(self, message: Message) -> str | None:
        """Finish the request ``message`` answers; its id if a callback is due, else None."""
        record = self.store.pending(message.correlation_id or "")
        if record is None:  # finished already (a duplicate, overdue, replayed), or not ours
            return self._settle_again(message)
        number: str | None = None
        try:
            document = self.asking.answer_of(record, message.body)
            status, body, media_type = 200, document.envelope, "application/json"
            number = document.number
        except BusError as exc:
            exc.message_id = exc.message_id or record.message_id
            status, body = _problem(exc)
            media_type = PROBLEM_MEDIA_TYPE
        finished = self.store.finish(
            record.message_id, status=status, media_type=media_type, body=body, number=number
        )
        log.info("asynchronous request finished", extra={"bus": {
            "message_id": record.message_id, "service": record.service, "status": status}})
        return record.message_id if finished and record.callback else None

    def _settle_again(self, message: Message) -> str | None:
        """An answer for a request finished already: a verified answer replaces an error result
        (an operator replayed the dead letter, and the provider handed the data out: the asker
        must get it); anything else (a duplicate, an error again, not ours) is dropped. The
        request's id if its callback is due again, else None."""
        record = self.store.find(message.correlation_id or "")
        if record is None or record.status is None or record.status < 400:
            log.debug("async reply %s answers no pending request; dropped", message.message_id)
            return None
        try:
            document = self.asking.answer_of(record, message.body)
        except BusError as exc:
            log.info("async reply for a finished request dropped", extra={"bus": {
                "message_id": record.message_id, "service": record.service,
                "outcome": exc.code}})
            return None
        replaced = self.store.refinish(
            record.message_id, status=200, media_type="application/json",
            body=document.envelope, number=document.number,
        )
        log.info("asynchronous request answered after its error (a replay)", extra={"bus": {
            "message_id": record.message_id, "service": record.service, "status": 200,
            "replaced": record.status}})
        return record.message_id if replaced and record.callback else None

    async def _sweep(self) -> None:
        """Finish the rows whose deadline passed with no answer (504)."""
        while True:
            now = time.time() - _WAIT_GRACE_S
            for record in await run_in_threadpool(self.store.overdue, now):
                error = DeadlineExceeded(
                    f"no answer from the provider of {record.service} before the deadline",
                    message_id=record.message_id,
                )
                status, body = _problem(error)
                finished = await run_in_threadpool(
                    self.store.finish, record.message_id, status=status,
                    media_type=PROBLEM_MEDIA_TYPE, body=body,
                )
                if finished and record.callback:
                    self._spawn(self._callback(record.message_id))
            await asyncio.sleep(SWEEP_S)

    async def _callback(self, message_id: str) -> None:
        record = await run_in_threadpool(self.store.find, message_id)
        if record is None or record.callback is None or record.status is None:
            return
        # One delivery at a time, bus-wide: with a shared state every gateway resumes the
        # callbacks due when it starts, and only the lease's holder delivers.
        state = self.node.state
        key, owner = f"callback/{message_id}", f"{self.node.instance}/{uuid.uuid4().hex}"
        claim = await run_in_threadpool(
            state.claim, key, owner, lease_s=CALLBACK_LEASE_S,
            expires_at=state.clock() + CALLBACK_LEASE_S,
        )  # fmt: skip
        if not claim.granted:  # another process delivers it, or did
            return
        try:
            body = record.body or b""
            # signed as the client the node acts for: the receiver checks it came from its bus
            signature = self.node.seal.sign_detached(record.client, body)
            delivered = await self._deliver(
                record.callback, message_id, record.status, record.media_type or "", body,
                record.number, signature=signature,
            )
            await run_in_threadpool(self.store.callback_settled, message_id, delivered=delivered)
        except BaseException:  # stopped meanwhile: the next start delivers it
            await run_in_threadpool(state.release, key, owner)
            raise
        await run_in_threadpool(state.settle, key, owner, b"delivered" if delivered else b"failed")

    async def _deliver(self, url: str, message_id: str, status: int, media_type: str,
                       body: bytes, number: str | None, *, signature: str | None = None) -> bool:
        headers = {"Content-Type": media_type, "X-Bus-Message-Id": message_id,
                   "X-Bus-Status": str(status)}
        if number is not None:
            headers["X-Bus-Request-Number"] = number
        if signature is not None:
            headers["X-Bus-Signature"] = signature
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
                        return True
                    why = str(r.status_code)
                except CallbackRefused as exc:  # the policy's answer will not change: stop
                    log.error("callback refused", extra={"bus": {
                        "message_id": message_id, "attempt": attempt, "outcome": exc.reason}})
                    return False
                except (httpx.HTTPError, OSError) as exc:  # OSError: the name did not resolve
                    why = type(exc).__name__
                log.warning("callback not delivered", extra={"bus": {
                    "message_id": message_id, "attempt": attempt, "outcome": why}})
        log.error("callback given up", extra={"bus": {"message_id": message_id}})
        return False

    def routes(self, auth: Any) -> APIRouter:
        router = APIRouter(tags=["messages"])

        @router.get("/v1/messages/{message_id}")
        async def message(message_id: str, request: Request) -> Response:
            """The state or result of an asynchronous request (only for the client who asked)."""
            client = await auth(request, request.headers.get("authorization"))
            record = await run_in_threadpool(self.store.get, message_id, client)
            if record is None:
                named = caller_value(message_id, CORRELATION_PATTERN)  # echoed if an id only
                raise UnknownDocument(f"no asynchronous request {named!r} of yours" if named
                                  else "no such asynchronous request of yours")
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
        if self._subscription is not None:
            await run_in_threadpool(self._subscription.cancel)
            self._subscription = None
        self._loop = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._store is not None:
            self._store.close()
            self._store = None
