"""The client side of an exchange: what the gateway does for a member this node hosts.

``Exchanger.ask`` checks the access right, builds the request envelope, signs it as the client,
publishes it to the service's queue and waits (without blocking the event loop) for the reply,
which it verifies as the provider's before returning it. An error reply becomes the typed error
the provider named; no reply before the deadline is ``DeadlineExceeded``. The client-side stages
(sign, transport, verify) and failed verifications go to ``bus.ops.metrics``; the gateway logs the
exchange (this module logs at debug level only).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from bus.config.routes import Route
from bus.core.envelope import Envelope, Kind, new_id
from bus.core.errors import (
    BusError,
    DeadlineExceeded,
    Expired,
    ProviderInvalidAnswer,
    Replayed,
    SignatureInvalid,
    from_code,
)
from bus.core.replay import ReplayGuard
from bus.core.seal import Seal
from bus.ops.metrics import BusMetrics
from bus.policy.access import AccessPolicy
from bus.transport import Message, Messaging, reply_queue
from schemas import SharedRequest

__all__ = ["Asked", "Exchanger", "Outcome", "recorded_by_provider"]

log = logging.getLogger("bus.exchange")
_WAIT_GRACE_S = 0.25


def recorded_by_provider(exc: BusError) -> bool:
    """Whether an error ``Exchanger.ask`` raised is the provider's own error answer, which its
    node put in the audit log; not so the gateway's conclusions — no answer in time, or one that
    does not verify (also when a provider answered with those codes: both sides record them) —
    which the gateway records."""
    return not isinstance(exc, DeadlineExceeded | ProviderInvalidAnswer)


class Asked(Protocol):
    """What a reply is checked against: the request it must answer (an ``Envelope``, or the
    record of an asynchronous request kept by ``bus.records.async_results``)."""

    @property
    def id(self) -> str: ...
    @property
    def client(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def correlation(self) -> str | None: ...


@dataclass(frozen=True)
class Outcome:
    """A verified answer: the signed response envelope exactly as the provider signed it;
    ``kept``: what the caller's ``keep`` made of it (see ``Exchanger.ask``)."""

    envelope: Envelope
    latency_s: float
    kept: Any = None


class Exchanger:
    def __init__(
        self,
        *,
        seal: Seal,
        access: AccessPolicy,
        transport: Messaging,
        metrics: BusMetrics | None = None,
        replay: ReplayGuard | None = None,
    ) -> None:
        self.seal = seal
        self.replay = replay if replay is not None else ReplayGuard(clock=seal.clock)
        self.access = access
        self.transport = transport
        self.metrics = metrics if metrics is not None else BusMetrics()

    def build(
        self,
        route: Route,
        request: SharedRequest,
        *,
        client: str,
        purpose: str,
        user: str,
        correlation: str | None = None,
        timeout_s: float | None = None,
    ) -> Envelope:
        self.access.check(client, route.service, purpose)
        now = self.seal.clock()
        message_id = new_id()
        return Envelope(
            id=message_id,
            correlation=correlation or message_id,
            client=client,
            service=route.service,
            user=user,
            purpose=purpose,
            subject=request.subject(),
            issued_at=now,
            expires_at=now + dt.timedelta(seconds=timeout_s or route.timeout_s),
            kind=Kind.request,
            payload=request.model_dump(mode="json"),
        )

    def post(self, route: Route, envelope: Envelope, *, reply_to: str) -> Envelope:
        """Sign ``envelope`` and publish it with its answer going to ``reply_to``; return it
        as signed. Blocking (the publish is durable when it returns): call it off the event
        loop. Whoever consumes ``reply_to`` checks the answer with ``verify_reply``."""
        signed = self._sign(route, envelope, reply_to)
        self.transport.publish(route.queue, self._message(signed, reply_to))
        return signed

    def _sign(self, route: Route, envelope: Envelope, reply_to: str) -> Envelope:
        """Sign as the client with where the answer goes (``reply_to``, this node), timed as
        the client's ``sign`` stage."""
        started = time.perf_counter()
        signed = self.seal.sign(envelope.addressed(reply_to=reply_to, node=self.transport.node))
        self.metrics.stage_seconds(route.service, "client", "sign").observe(
            time.perf_counter() - started
        )
        return signed

    @staticmethod
    def _message(signed: Envelope, reply_to: str | None = None) -> Message:
        return Message(
            body=signed.to_json(),
            message_id=signed.id,
            correlation_id=signed.correlation,
            reply_to=reply_to,
            expires_at=signed.expires_at.timestamp(),
        )

    async def ask(
        self, route: Route, envelope: Envelope, *, keep: Callable[[Envelope], Any] | None = None
    ) -> Outcome:
        """Sign and send ``envelope``, wait for the reply and verify it. ``keep`` (blocking: it
        may write a file) is called with the verified answer where the reply arrives — the
        transport's thread that hands it over — and its result is the outcome's ``kept``: the
        answer is checked and recorded there, and the event loop wakes once, for the result."""
        started = time.perf_counter()
        # transport.request sends the answer to this node's reply queue: signed as such
        signed = self._sign(route, envelope, reply_queue(self.transport.node))
        sent = time.perf_counter()
        future = self.transport.request(route.queue, self._message(signed))
        finished = self._finishing(route, signed, future, sent, keep)
        wait_s = (signed.expires_at - self.seal.clock()).total_seconds() + _WAIT_GRACE_S
        try:
            response, kept = await asyncio.wait_for(
                asyncio.wrap_future(finished), timeout=max(wait_s, 0.01)
            )
        except BusError as exc:
            # The transport's own failures (the pending-replies sweep's deadline, a refused
            # publish) know no more than the queue key: name the request, so every 504 and 503
            # carries its message id.
            exc.message_id = exc.message_id or signed.id
            exc.client = exc.client or signed.client
            exc.service = exc.service or signed.service
            raise
        except asyncio.CancelledError:
            future.cancel()  # the transport drops the reply
            raise
        except TimeoutError:
            future.cancel()
            self.metrics.stage_seconds(route.service, "client", "transport").observe(
                time.perf_counter() - sent
            )
            raise DeadlineExceeded(
                f"no answer from {route.provider} within {route.timeout_s:g} s",
                message_id=signed.id,
                client=signed.client,
                service=signed.service,
            ) from None
        latency = time.perf_counter() - started
        log.debug(
            "exchanged",
            extra={
                "bus": {
                    "message_id": signed.id,
                    "correlation": signed.correlation,
                    "client": signed.client,
                    "service": signed.service,
                    "outcome": "ok",
                    "duration_ms": round(latency * 1000, 2),
                }
            },
        )
        return Outcome(response, latency, kept)

    def _finishing(
        self, route: Route, signed: Envelope, future: Future[Message], sent: float,
        keep: Callable[[Envelope], Any] | None,
    ) -> Future[tuple[Envelope, Any]]:
        """What ``ask`` waits for: the reply to ``signed`` verified (and kept), done in the
        thread that completes ``future`` when the transport allows it (``replies_may_block``:
        the embedded transport's workers), else in the event loop's executor; never on the
        event loop itself (a reply that came before this was called would run it there)."""
        stage = self.metrics.stage_seconds
        finished: Future[tuple[Envelope, Any]] = Future()
        loop, loop_thread = asyncio.get_running_loop(), threading.get_ident()
        inline = getattr(self.transport, "replies_may_block", False)

        def finish(done: Future[Message]) -> None:
            if not finished.set_running_or_notify_cancel():
                return  # the caller gave up (its deadline): nothing recorded
            replied = time.perf_counter()
            stage(route.service, "client", "transport").observe(replied - sent)
            try:
                reply = done.result()
                try:
                    response = self.verify_reply(signed, Envelope.from_json(reply.body))
                finally:
                    stage(route.service, "client", "verify").observe(time.perf_counter() - replied)
                finished.set_result((response, keep(response) if keep is not None else None))
            except BaseException as exc:  # the caller raises it
                finished.set_exception(exc)

        def arrived(done: Future[Message]) -> None:
            if done.cancelled():
                finished.cancel()
            elif inline and threading.get_ident() != loop_thread:
                finish(done)
            elif threading.get_ident() == loop_thread:
                loop.run_in_executor(None, finish, done)
            else:  # an I/O thread (RabbitMQ's reply queue): never kept waiting on a file
                loop.call_soon_threadsafe(loop.run_in_executor, None, finish, done)

        future.add_done_callback(arrived)
        return finished

    def verify_reply(self, request: Asked, reply: Envelope) -> Envelope:
        """Verify a reply as the provider's answer to ``request``; raise its error if it is one."""
        ctx: dict[str, Any] = {
            "message_id": request.id,
            "client": request.client,
            "service": request.service,
        }
        if reply.correlation != request.id or reply.service != request.service:
            raise ProviderInvalidAnswer("reply does not answer this request", **ctx)
        try:
            self.seal.verify(reply)
        except Expired:
            self.metrics.signature_failures("client", request.service, "expired").inc()
            raise
        except SignatureInvalid as exc:
            self.metrics.signature_failures("client", request.service, exc.reason).inc()
            raise ProviderInvalidAnswer(
                f"the provider's signature does not verify ({exc.reason}): {exc.detail}", **ctx
            ) from exc
        try:
            self.replay.admit(reply, reply.signature or "")
        except Replayed as exc:
            self.metrics.signature_failures("client", request.service, "replayed").inc()
            raise ProviderInvalidAnswer(f"the reply was replayed: {exc.detail}", **ctx) from exc
        if reply.kind is Kind.error:
            code = str(reply.payload.get("code", "bus-error"))
            error: BusError = from_code(code, str(reply.payload.get("detail", "")), **ctx)
            log.debug(
                "refused",
                extra={"bus": {**ctx, "correlation": request.correlation, "outcome": code}},
            )
            raise error
        return reply
