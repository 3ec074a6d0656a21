"""The provider side of an exchange: one worker per service hosted on this node.

For each delivered request: verify first (signature, signer, time window), refuse a service
this worker does not serve, re-check the access right (the provider's node enforces it too),
validate the payload against the shared schema, call the adapter with retries inside the
deadline, minimise the answer to the fields the right allows, sign last as the provider, reply,
and only then ack (``Delivery.process``). Every failure that can be answered is answered with a
signed error envelope carrying the bus error code; only unreadable messages are dead-lettered.
A request id answered before is answered again from memory, not re-executed; with the node
state (``state``), the answer is also recorded there and a copy of a request that another worker
or node executes waits for it instead of executing again (``leases``, ``bus.exchange.leases``).
The answer is recorded (audit entry, then memory and node state) before it is sent: a send that
fails (the broker restarting, a confirm too late) sends the delivery back through the retry
queue (``reply-unsent``), and that copy is answered from the record, never from the agency.

Answers go only where the client signed them to go (``bus.exchange.reply_address``): a request
whose reply address is not the signed one, or not its signed asking node's, is dead-lettered
with a ``reply-address-…`` reason, answered nowhere, and never reaches the agency.

Two layers of retry, both from the service's ``retry`` settings: ``attempts`` adapter calls
within one delivery (tenacity, short waits), then up to ``redeliveries`` trips through the
transport's retry queues (``redelivery_delay_s``, doubling) while the deadline allows. A request
still failing transiently after its redeliveries is answered with the error *and* dead-lettered
with the error code as reason, so an operator can replay it once the agency is back.

Metrics (``bus.ops.metrics``): the provider-side stages (verify, validate, adapter, sign), each
adapter attempt and its retries, redeliveries, dead letters, verification failures and access
refusals; the children of this worker's service are bound once, in the constructor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError

from adapters import Adapter, Deadline, ProviderError, answering
from bus.config.routes import Route
from bus.core.envelope import Envelope, Kind
from bus.core.errors import (
    AccessDenied,
    BusError,
    DeadlineExceeded,
    Expired,
    MalformedRequest,
    ProviderInvalidAnswer,
    Replayed,
    SchemaInvalid,
    SignatureInvalid,
    is_transient,
)
from bus.core.replay import ReplayGuard, delivery_source
from bus.core.seal import Seal
from bus.exchange.answered import Answered
from bus.exchange.leases import AnsweredElsewhere, InProgress, Lease, Leases
from bus.exchange.reply_address import NotAnswerable, check_reply_address
from bus.inbox.manual import DeferringAdapter
from bus.inbox.store import Ticket
from bus.ops.metrics import BusMetrics
from bus.policy.access import AccessPolicy, minimise
from bus.policy.breaker import CircuitBreaker
from bus.policy.retry import retrying
from bus.records.audit import AuditLog
from bus.transport import Delivery, Message, Messaging
from schemas import SharedRequest, SharedResponse

__all__ = ["ProviderWorker"]

log = logging.getLogger("bus.provider")
_REPLY_MARGIN_S = 0.05
_AUDIT_RETRY_S = 0.5  # a request whose audit entry could not be written comes back this late
_REPLY_RETRY_S = 0.5  # a request whose answer could not be sent comes back this late (doubling)


class _TryLater(Exception):
    """Hand the delivery back to the transport's retry queue for a later attempt."""

    def __init__(self, error: BusError, delay_s: float) -> None:
        super().__init__(error.code)
        self.error = error
        self.delay_s = delay_s


class ProviderWorker:
    def __init__(
        self,
        route: Route,
        adapter: Adapter,
        *,
        seal: Seal,
        access: AccessPolicy,
        transport: Messaging,
        sleep: Callable[[float], None] = time.sleep,
        metrics: BusMetrics | None = None,
        replay: ReplayGuard | None = None,
        breaker: CircuitBreaker | None = None,
        audit: AuditLog | None = None,
        leases: Leases | None = None,
    ) -> None:
        self.route = route
        self.adapter = adapter
        self.seal = seal
        self.access = access
        self.transport = transport
        self.sleep = sleep
        self._answered = Answered()
        self.breaker = breaker
        self.audit = audit
        self.replay = replay if replay is not None else ReplayGuard(clock=seal.clock)
        self.leases = leases
        # Asked once: isinstance against a runtime-checkable Protocol costs ~15 µs a call.
        self._deferring = isinstance(adapter, DeferringAdapter)
        m = self.metrics = metrics if metrics is not None else BusMetrics()
        service, provider = route.service, route.provider
        self._inflight = m.provider_inflight(service)
        self._verify_s = m.stage_seconds(service, "provider", "verify")
        self._validate_s = m.stage_seconds(service, "provider", "validate")
        self._adapter_s = m.stage_seconds(service, "provider", "adapter")
        self._sign_s = m.stage_seconds(service, "provider", "sign")
        self._answered_ok = m.provider_requests(service, "ok")
        self._adapter_ok = m.adapter_calls(provider, service, "ok")

    def handle(self, delivery: Delivery) -> None:
        self._inflight.inc()
        try:
            with delivery.process():
                try:
                    self._handle(delivery)
                except Exception as exc:
                    if not delivery.settled:  # process() dead-letters it
                        code = exc.code if isinstance(exc, BusError) else "internal-error"
                        self.metrics.dead_lettered(self.route.service, code).inc()
                        self.metrics.provider_requests(self.route.service, "unanswered").inc()
                    raise
        finally:
            self._inflight.dec()

    def _handle(self, delivery: Delivery) -> None:
        message = delivery.message
        service = self.route.service
        # Answers are remembered per delivery source (exact bytes and reply address): a
        # redelivery gets its answer again, a replay from elsewhere never gets another's.
        source = delivery_source(message.body, message.reply_to)
        remembered_as = f"{message.message_id}/{source}"
        cached = self._answered.get(remembered_as)
        if cached is not None:
            if self._sent(delivery, cached):
                self.metrics.provider_requests(service, "duplicate").inc()
            return
        request = Envelope.from_json(message.body)  # unreadable: dead-lettered by process()
        started = time.perf_counter()
        held: list[Lease] = []  # the request's lease, once _serve took it
        try:
            self._reply(delivery, request, source, remembered_as, started, held)
        except AnsweredElsewhere as answered:  # another worker or node recorded the answer
            out = Message(
                body=answered.body,
                message_id=str(orjson.loads(answered.body)["id"]),
                correlation_id=message.message_id,
                expires_at=request.expires_at.timestamp(),
            )
            self._answered.put(remembered_as, request.expires_at.timestamp(), out)
            if self._sent(delivery, out):
                self.metrics.provider_requests(service, "duplicate").inc()
                self._log("answered from the record", request, "duplicate", delivery.attempt,
                          started)
        except InProgress as busy:  # another worker's lease still runs: come back later
            delivery.retry(busy.delay_s, "in-progress")
            self.metrics.redeliveries(service, "in-progress").inc()
            self.metrics.provider_requests(service, "retry-later").inc()
        finally:
            if held and self.leases is not None:
                try:  # unless settled: not answered, or not recorded
                    self.leases.release(held[0])
                except Exception:  # the state away: the lease, no longer renewed, runs out
                    log.warning("a request lease could not be released", exc_info=True,
                                extra={"bus": {"message_id": message.message_id}})

    def _reply(
        self, delivery: Delivery, request: Envelope, source: str, remembered_as: str,
        started: float, held: list[Lease],
    ) -> None:
        message, service = delivery.message, self.route.service
        try:
            reply = self._answer(request, delivery.attempt, source, message, held)
        except NotAnswerable as refused:
            delivery.dead_letter(refused.reason)
            self.metrics.dead_lettered(service, refused.reason).inc()
            self.metrics.provider_requests(service, refused.reason).inc()
            log.warning(
                "request not answered: its reply address is not the signed one",
                extra={"bus": {"message_id": request.id, "client": request.client,
                               "service": service, "outcome": refused.reason}},
            )
            return
        except _TryLater as later:
            delivery.retry(later.delay_s, later.error.code)
            self.metrics.redeliveries(service, later.error.code).inc()
            self.metrics.provider_requests(service, "retry-later").inc()
            self._log("retrying", request, later.error.code, delivery.attempt, started)
            return
        if reply is None:  # filed for an operator, who answers it later (bus.inbox.desk)
            if self._audited(delivery, request, "filed", None, started):
                self.metrics.provider_requests(service, "filed").inc()
                self._log("filed for an operator", request, "filed", delivery.attempt, started)
            return
        signing = time.perf_counter()
        signed = self.seal.sign(reply)
        self._sign_s.observe(time.perf_counter() - signing)
        out = Message(
            body=signed.to_json(),
            message_id=signed.id,
            correlation_id=message.message_id,
            expires_at=request.expires_at.timestamp(),
        )
        # an error's code is set by BusError.envelope_payload: a known code
        outcome = str(reply.payload.get("code")) if reply.kind is Kind.error else "ok"
        again = bool(held) and held[0].attempt > 1  # the worker before died unrecorded
        if not self._audited(delivery, request, outcome, out.body, started, again=again):
            if held and self.leases is not None:  # executed, unrecorded: the next is "again"
                self.leases.end(held[0])
            return
        if again:
            self.metrics.reexecutions(service).inc()
        # An answer to a transient failure that used up the redeliveries goes to the caller,
        # and the request to the operator to replay; a replay must reach the agency again, so
        # that answer is not recorded.
        exhausted = reply.kind is Kind.error and self._exhausted(reply)
        if not exhausted:
            # Recorded before it is sent: should the send fail (the broker restarting, a
            # confirm too late), the next copy gets this answer, the agency is not asked again.
            self._record(held, remembered_as, request, out)
            if not self._sent(delivery, out):
                return
        else:
            self.transport.reply(message, out)
        if reply.kind is Kind.error:
            self.metrics.provider_requests(service, outcome).inc()
        else:
            self._answered_ok.inc()
        self._log("answered", request, outcome, delivery.attempt, started)
        if exhausted:
            delivery.dead_letter(outcome)
            self.metrics.dead_lettered(service, outcome).inc()

    def _record(
        self, held: list[Lease], remembered_as: str, request: Envelope, out: Message
    ) -> None:
        """Remember the answer in this process and settle the lease with it in the node state
        (every copy, on any node, gets it from there on)."""
        self._answered.put(remembered_as, request.expires_at.timestamp(), out)
        if held and self.leases is not None:
            try:
                self.leases.settle(held[0], out.body)
            except Exception:  # the answer still goes; a copy on another node may run again
                log.warning("an answer could not be recorded in the node state", exc_info=True,
                            extra={"bus": {"message_id": request.id}})

    def _sent(self, delivery: Delivery, out: Message) -> bool:
        """Send the recorded answer ``out``; False if it could not be sent now: then the
        delivery goes back through the retry queue (sooner than the caller's deadline) and its
        next copy sends the recorded answer again, without the agency."""
        try:
            self.transport.reply(delivery.message, out)
        except Exception as exc:
            code = exc.code if isinstance(exc, BusError) else "internal-error"
            service = self.route.service
            log.warning(
                "answer not sent, sent again from the record on the next delivery",
                extra={"bus": {"message_id": delivery.message.message_id, "service": service,
                               "outcome": code, "attempt": delivery.attempt}},
            )
            delivery.retry(min(_REPLY_RETRY_S * 2 ** (delivery.attempt - 1), 30.0), "reply-unsent")
            self.metrics.redeliveries(service, "reply-unsent").inc()
            self.metrics.provider_requests(service, "retry-later").inc()
            return False
        return True

    def _audited(
        self, delivery: Delivery, request: Envelope, outcome: str, answer: bytes | None,
        started: float, *, again: bool = False,
    ) -> bool:
        """Write the audit entry, durable before anyone gets the answer; False if it could not
        be written: then the request is not answered, not acked, and the transport delivers it
        again later (at-least-once, as after a crash; the caller's deadline bounds how long)."""
        if self.audit is None:
            return True
        try:
            self.audit.write(
                self.audit.exchange(
                    request,
                    outcome=outcome,
                    side="provider:re-executed" if again else "provider",
                    answer=answer,
                )
            )
        except Exception as exc:
            code = exc.code if isinstance(exc, BusError) else "internal-error"
            log.error("audit write failed", extra={"bus": {"message_id": request.id}})
            delivery.retry(_AUDIT_RETRY_S, "audit-unavailable")
            self.metrics.provider_requests(self.route.service, "audit-unavailable").inc()
            self._log("not answered", request, code, delivery.attempt, started)
            return False
        return True

    def _exhausted(self, reply: Envelope) -> bool:
        """A transient failure that used up the service's redeliveries (if it has any)."""
        policy = self.route.settings.retry
        return policy.redeliveries > 0 and is_transient(str(reply.payload.get("code")))

    def _log(
        self, what: str, request: Envelope, outcome: str, attempt: int, started: float
    ) -> None:
        log.info(
            what,
            extra={
                "bus": {
                    "message_id": request.id,
                    "correlation": request.correlation,
                    "client": request.client,
                    "service": request.service,
                    "outcome": outcome,
                    "attempt": attempt,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                }
            },
        )

    def _answer(
        self, request: Envelope, attempt: int = 1, source: str = "", message: Message | None = None,
        held: list[Lease] | None = None,
    ) -> Envelope | None:
        """The answer to ``request``; None when it was filed to be answered later."""
        try:
            payload = self._serve(request, source, message, held)
            if payload is None:
                return None
            return request.reply(Kind.response, payload, now=self.seal.clock())
        except Expired:
            if request.expires_at <= self.seal.clock():
                raise  # nobody waits for an answer past the deadline: dead-letter as "expired"
            early = Expired("issued in the future")
            return request.reply(Kind.error, early.envelope_payload(), now=self.seal.clock())
        except BusError as exc:
            policy = self.route.settings.retry
            if exc.transient and attempt <= policy.redeliveries:
                delay = policy.redelivery_delay_s * 2 ** (attempt - 1)
                now = self.seal.clock()
                if (request.expires_at - now).total_seconds() > delay + _REPLY_MARGIN_S:
                    raise _TryLater(exc, delay) from exc
            return request.reply(Kind.error, exc.envelope_payload(), now=self.seal.clock())

    def _serve(
        self, request: Envelope, source: str = "", message: Message | None = None,
        held: list[Lease] | None = None,
    ) -> dict[str, Any] | None:
        ctx: dict[str, Any] = {
            "message_id": request.id,
            "client": request.client,
            "service": request.service,
        }
        service = self.route.service
        started = time.perf_counter()
        try:
            self.seal.verify(request)
        except SignatureInvalid as exc:
            self.metrics.signature_failures("provider", service, exc.reason).inc()
            raise
        except Expired:
            self.metrics.signature_failures("provider", service, "expired").inc()
            raise
        finally:
            self._verify_s.observe(time.perf_counter() - started)
        if message is not None:  # before the replay guard: a tampered copy claims no id
            check_reply_address(request, message)
        try:
            self.replay.admit(request, source)  # after the signature: forgeries claim no id
        except Replayed:
            self.metrics.signature_failures("provider", service, "replayed").inc()
            raise
        if request.kind is not Kind.request or request.service != service:
            raise MalformedRequest(f"this worker serves requests for {service}", **ctx)
        try:
            right = self.access.check(request.client, request.service, request.purpose)
        except AccessDenied as exc:  # the client is a verified member: a bounded label
            self.metrics.access_refusals("provider", request.client, service, exc.reason).inc()
            raise
        started = time.perf_counter()
        try:
            shared_request = self.route.request_model.model_validate(request.payload)
        except ValidationError as exc:
            raise SchemaInvalid(f"{exc.error_count()} field(s) invalid", **ctx) from None
        finally:
            self._validate_s.observe(time.perf_counter() - started)
        if self._deferring:
            self._file(request, shared_request, message, ctx)
            return None
        remaining = (request.expires_at - self.seal.clock()).total_seconds() - _REPLY_MARGIN_S
        if remaining <= 0:
            raise DeadlineExceeded("no time left to call the provider", **ctx)
        if self.leases is not None and held is not None:  # one execution at a time, bus-wide
            # renewed while this worker runs: the agency gets the whole deadline
            held.append(self.leases.take(request.id, request.expires_at.timestamp()))
        deadline = Deadline.after(remaining)
        policy = self.route.settings.retry
        started = time.perf_counter()
        try:
            if policy.attempts == 1:  # nothing to retry: tenacity would add ~15 µs a call
                response = self._call(shared_request, deadline, ctx)
            else:
                for attempt in retrying(
                    policy, deadline, sleep=self.sleep, on_retry=self._retried
                ):
                    with attempt:
                        response = self._call(shared_request, deadline, ctx)
        except ProviderError as exc:
            exc.with_context(**ctx)
            raise
        finally:
            self._adapter_s.observe(time.perf_counter() - started)
        return minimise(response.model_dump(mode="json"), right.fields)

    def _file(
        self,
        request: Envelope,
        shared_request: SharedRequest,
        message: Message | None,
        ctx: dict[str, Any],
    ) -> None:
        """Hand the request to a deferring adapter (the operator inbox) with where to answer."""
        if message is None or not request.reply_to:
            raise MalformedRequest("a request for an operator must name where to answer", **ctx)
        assert isinstance(self.adapter, DeferringAdapter)
        ticket = Ticket(
            id=request.id,
            service=request.service,
            client=request.client,
            purpose=request.purpose,
            user=request.user,
            subject=request.subject,
            envelope=message.body,
            reply_to=request.reply_to,  # the signed one (equal to the transport's, checked)
            expires_at=request.expires_at.timestamp(),
        )
        try:
            self.adapter.file(shared_request, ticket)
        except ProviderError as exc:
            exc.with_context(**ctx)
            raise

    def _call(
        self, request: SharedRequest, deadline: Deadline, ctx: dict[str, Any]
    ) -> SharedResponse:
        """One adapter attempt, counted by outcome."""
        route, m, breaker = self.route, self.metrics, self.breaker
        if breaker is not None:
            breaker.before_call()
        try:
            with answering(str(ctx["message_id"])):  # the agency may de-duplicate on it
                response = self.adapter.call(request, deadline)
        except ProviderError as exc:
            m.adapter_calls(route.provider, route.service, exc.code).inc()
            if exc.code != "no-data":
                m.adapter_errors(route.provider, route.service, exc.code).inc()
            if breaker is not None:
                # a client error (no data, rejected) shows the provider is up
                (breaker.failure if exc.transient else breaker.success)()
            raise
        except Exception:
            m.adapter_calls(route.provider, route.service, "internal-error").inc()
            m.adapter_errors(route.provider, route.service, "internal-error").inc()
            if breaker is not None:
                breaker.failure()
            raise
        if breaker is not None:
            breaker.success()
        if not isinstance(response, route.response_model):
            code = ProviderInvalidAnswer.code
            m.adapter_calls(route.provider, route.service, code).inc()
            m.adapter_errors(route.provider, route.service, code).inc()
            raise ProviderInvalidAnswer(
                f"adapter returned {type(response).__name__}, not {route.response_model.__name__}",
                **ctx,
            )
        self._adapter_ok.inc()
        return response

    def _retried(self, exc: BaseException) -> None:
        kind = exc.code if isinstance(exc, ProviderError | BusError) else "internal-error"
        self.metrics.adapter_retries(self.route.provider, self.route.service, kind).inc()
