"""What the HTTP gateway does when it refuses a request with a ``BusError``.

``Refusals.answer(scope, error)`` is the one answer to a refusal, whoever raised it (a route of
the FastAPI app through its exception handler, or the service calls' fast path,
``bus.gateway.service_calls``): the outcome put into the ASGI scope for ``Observe``, the audit
entry of a refused service request (durable before the answer), the access-refusal metric for a
401 or 403, and the RFC 9457 problem document (``Retry-After`` with a 429).

``Refusals.record(scope, outcome)`` writes the audit entry alone (for refusals that are not a
``BusError``, such as FastAPI's validation errors). Only a request to an audited path (a
service, the citizen report, a bundle) whose caller was authenticated is recorded here: the ask
pipeline (or the provider's node) records what it refused itself, and refusals before
authentication are ``bus.gateway.throttle``'s. The entry takes only what passed its check from
the request's headers, never the raw bytes a caller sent.
"""

from __future__ import annotations

import math

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Scope

from bus.core.envelope import new_id
from bus.core.errors import AccessDenied, BusError, RateLimited, Unauthenticated
from bus.exchange.asking import AskContext
from bus.gateway.params import CORRELATION_PATTERN, PURPOSE_PATTERN, USER_PATTERN, caller_value
from bus.gateway.problems import instance_of, problem_response
from bus.node.wiring import Node

__all__ = ["Refusals"]


class Refusals:
    """``audited``: path → the service id its refusals are recorded under; ``services``: the
    service routes' paths → service id (the metric's label)."""

    def __init__(self, node: Node, *, audited: dict[str, str], services: dict[str, str]) -> None:
        self.node = node
        self.audited = audited
        self.services = services

    async def record(self, scope: Scope, outcome: str) -> None:
        """The audit entry of a request the gateway refused, durable before the answer."""
        context: AskContext | None = scope.get("bus.ask")
        if (context is not None and context.audited) or scope["path"] not in self.audited:
            return  # the ask pipeline (or the provider's node) recorded it
        if "bus.client" not in scope:  # before authentication: bus.gateway.throttle audits it
            return
        headers = Headers(scope=scope)
        node = self.node
        record = node.audit.refusal(  # only what passed its check: never raw caller bytes
            message_id=scope.get("bus.message_id") or new_id(),
            correlation=caller_value(headers.get("x-bus-correlation"), CORRELATION_PATTERN),
            client=scope.get("bus.client", "-"),
            service=self.audited[scope["path"]],
            user=caller_value(headers.get("x-bus-user"), USER_PATTERN) or "-",
            purpose=caller_value(headers.get("x-bus-purpose"), PURPOSE_PATTERN) or "-",
            subject=scope.get("bus.subject"),  # the citizen report's refusals name whom
            outcome=outcome,
            at=node.seal.clock(),
        )
        await node.audit.record_refusal(record)

    async def answer(self, scope: Scope, exc: BusError) -> Response:
        """The problem answering ``exc``, once recorded and counted (see the module)."""
        scope["bus.outcome"] = exc.code  # Observe logs and counts it
        if exc.message_id is not None:
            scope.setdefault("bus.message_id", exc.message_id)
        await self.record(scope, exc.code)
        if isinstance(exc, Unauthenticated | AccessDenied):
            self.node.metrics.access_refusals(
                "client",
                scope.get("bus.client", "-"),
                self.services.get(scope["path"], "-"),
                exc.reason,
            ).inc()
        headers = (
            {"Retry-After": str(math.ceil(exc.retry_after_s))}
            if isinstance(exc, RateLimited)
            else None
        )
        return problem_response(exc, instance=instance_of(scope), headers=headers)
