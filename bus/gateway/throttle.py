"""Per-source throttles, the operator sign-in lockout, and refusals before authentication.

``SourceGate`` is an ASGI middleware in front of the gateway's routes. It knows a request only by
its source address (the peer of the connection) and its path, and it keeps, per source, a token
bucket for each area (``http:`` settings, ``bus.config.http``):

* ``public`` — ``GET /verify/…`` and ``/v1/documents/…``: anyone may look a paper up, but not
  enumerate request numbers at speed;
* ``sign-in`` — ``/inbox``: every page signs the operator in (HTTP Basic); and after
  ``lockout_failures`` failed sign-ins in a row a source is locked out for ``lockout_s``
  seconds (a 429 with ``Retry-After`` even for the right password), the lockout audited;
* ``anonymous`` — refusals before authentication on the API (``/v1/…``, ``/soap/…``): a missing
  or unknown
  token, a body refused before the token was looked at. Each takes a token of the source's
  bucket; a source whose bucket is empty is refused at once (429) until it refills.

A source over a bucket gets 429 ``rate-limited`` with ``Retry-After`` (a problem document, an
HTML page on ``/inbox``), counted in ``bus_throttled_total{area}``.

A refusal before authentication does not write an audit entry of its own (anyone could grow the
log without bound): ``AnonymousRefusals`` counts it (``bus_anonymous_refusals_total``) and writes
one entry for the first refusal of each source, minute, outcome and service (a configured
service id, or ``-``), before the answer, and at
the next minute one more with the count of that minute when there was more than one
(``purpose`` ``count:N``). An entry's ``user`` is ``source:<address>``, ``client`` ``-``; at
most ``MAX_SOURCES`` (source, outcome, service) are told apart in a minute (the rest count
as ``source:other``).
What is left is written when the node stops. Buckets are per node process, at most
``MAX_SOURCES`` per area (the longest idle ones are forgotten).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus.config.http import HttpSettings, SourceRate
from bus.config.settings import RateLimitSettings
from bus.core.envelope import new_id
from bus.core.errors import RateLimited
from bus.gateway.html import page
from bus.gateway.problems import problem_response
from bus.ops.metrics import BusMetrics
from bus.policy.ratelimit import TokenBucket
from bus.records.audit.log import AuditLog, AuditRecord

__all__ = ["INBOX_SIGN_IN", "MAX_SOURCES", "AnonymousRefusals", "SourceBuckets", "SourceGate"]

MAX_SOURCES = 10_000
INBOX_SIGN_IN = "bus/operator-sign-in/v1"  # the audit's service of the sign-in lockouts
_OPERATOR = re.compile(r"[A-Za-z0-9._-]{1,64}")  # an operator name (bus.config.settings)
_OUTCOME = re.compile(r"[a-z][a-z-]{0,39}")
_BY_STATUS = {400: "malformed-request", 401: "unauthenticated", 404: "unknown-service",
              405: "method-not-allowed", 408: "request-timeout", 413: "payload-too-large",
              415: "unsupported-media-type", 422: "schema-invalid", 429: "rate-limited"}
_ROUTES = (("/v1/services/", "services"), ("/v1/bundles", "bundles"),
           ("/v1/messages/", "messages"), ("/v1/documents/", "documents"),
           ("/v1/citizens/", "citizens"), ("/inbox", "inbox"), ("/verify/", "verify"),
           ("/soap/", "soap"))


def route_label(path: str) -> str:
    """A bounded metric label for ``path``."""
    if path == "/v1/services":
        return "catalog"
    return next((label for prefix, label in _ROUTES if path.startswith(prefix)), "other")


class SourceBuckets:
    """A token bucket per source address, at most ``MAX_SOURCES`` (least recently used go)."""

    def __init__(self, rate: SourceRate, *, clock: Callable[[], float] = time.monotonic,
                 max_sources: int = MAX_SOURCES) -> None:
        self.settings = RateLimitSettings(per_second=rate.per_second, burst=rate.burst)
        self._clock = clock
        self._max = max_sources
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def _bucket(self, source: str) -> TokenBucket:
        with self._lock:
            bucket = self._buckets.get(source)
            if bucket is None:
                bucket = self._buckets[source] = TokenBucket(self.settings, clock=self._clock)
                while len(self._buckets) > self._max:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(source)
            return bucket

    def take(self, source: str) -> float:
        """Take a token: 0.0 if there was one, else the seconds until there is one."""
        return self._bucket(source).take()

    def waiting(self, source: str) -> float:
        """The seconds until ``source`` has a token again (0.0: it has one), taking none."""
        return self._bucket(source).take(0.0)


@dataclass
class _Minute:
    started: dt.datetime
    # (source, outcome, service) -> refusals this minute
    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)


class AnonymousRefusals:
    """Refusals before authentication, audited per source, minute and outcome (module doc)."""

    def __init__(self, audit: AuditLog, metrics: BusMetrics, clock: Callable[[], dt.datetime],
                 *, max_sources: int = MAX_SOURCES) -> None:
        self.audit = audit
        self.metrics = metrics
        self.clock = clock
        self.max_sources = max_sources
        self._minute: _Minute | None = None
        self._lock = threading.Lock()

    def _record(self, at: dt.datetime, source: str, outcome: str, service: str,
                count: int | None) -> AuditRecord:
        message_id = new_id()
        return self.audit.refusal(
            message_id=message_id, correlation=None, client="-", service=service,
            user=f"source:{source}", purpose="-" if count is None else f"count:{count}",
            subject=None, outcome=outcome, at=at,
        )

    def _closed(self, minute: _Minute) -> list[AuditRecord]:
        return [self._record(minute.started, source, outcome, service, count)
                for (source, outcome, service), count in minute.counts.items() if count > 1]

    def refused(self, source: str, route: str, outcome: str, service: str) -> list[AuditRecord]:
        """Count one refusal; the audit records now due (the first of its minute, the counts of
        the minute before)."""
        self.metrics.anonymous_refusals(route, outcome).inc()
        now = self.clock()
        started = now.replace(second=0, microsecond=0)
        due: list[AuditRecord] = []
        with self._lock:
            if self._minute is None or self._minute.started != started:
                if self._minute is not None:
                    due.extend(self._closed(self._minute))
                self._minute = _Minute(started)
            minute = self._minute
            key = (source, outcome, service)
            if key not in minute.counts and len(minute.counts) >= self.max_sources:
                key = ("other", outcome, service)
            count = minute.counts.get(key, 0) + 1
            minute.counts[key] = count
        if count == 1:
            due.append(self._record(now, key[0], outcome, service, None))
        return due

    def flush(self) -> list[AuditRecord]:
        """The counts not written yet (when the node stops)."""
        with self._lock:
            minute, self._minute = self._minute, None
        return [] if minute is None else self._closed(minute)

    async def write(self, records: list[AuditRecord]) -> None:
        for record in records:
            await self.audit.record_refusal(record, kind="anonymous-refusal")


class _SignIns:
    """Failed operator sign-ins per source in a row, and the sources locked out until when."""

    def __init__(self, failures: int, lockout_s: float, clock: Callable[[], float]) -> None:
        self.failures = failures
        self.lockout_s = lockout_s
        self._clock = clock
        self._failed: OrderedDict[str, int] = OrderedDict()
        self._locked: dict[str, float] = {}
        self._lock = threading.Lock()

    def locked_for(self, source: str) -> float:
        with self._lock:
            until = self._locked.get(source)
            if until is None:
                return 0.0
            left = until - self._clock()
            if left <= 0:
                del self._locked[source]
                return 0.0
            return left

    def failed(self, source: str) -> bool:
        """Count a failure; True when it locks ``source`` out."""
        with self._lock:
            count = self._failed.pop(source, 0) + 1
            if count >= self.failures:
                now = self._clock()
                if len(self._locked) >= MAX_SOURCES:  # forget the lockouts that ended
                    self._locked = {k: t for k, t in self._locked.items() if t > now}
                    while len(self._locked) >= MAX_SOURCES:  # then the ones ending first
                        del self._locked[min(self._locked, key=self._locked.__getitem__)]
                self._locked[source] = now + self.lockout_s
                return True
            self._failed[source] = count
            while len(self._failed) > MAX_SOURCES:
                self._failed.popitem(last=False)
            return False

    def succeeded(self, source: str) -> None:
        with self._lock:
            self._failed.pop(source, None)


def _operator_name(scope: Scope) -> str:
    """The operator name a Basic sign-in tried, if it is one that could exist; else ``-``."""
    header = dict(scope.get("headers") or []).get(b"authorization", b"")
    if not header.startswith(b"Basic "):
        return "-"
    try:
        name = base64.b64decode(header[6:], validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return "-"
    return name if _OPERATOR.fullmatch(name) else "-"


class SourceGate:
    """The middleware of the module docstring."""

    def __init__(self, app: ASGIApp, *, settings: HttpSettings, metrics: BusMetrics,
                 refusals: AnonymousRefusals, services: set[str],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.metrics = metrics
        self.refusals = refusals
        self.services = services
        self.areas = {
            "public": SourceBuckets(settings.public, clock=clock),
            "sign-in": SourceBuckets(settings.sign_in, clock=clock),
            "anonymous": SourceBuckets(settings.anonymous, clock=clock),
        }
        self.sign_ins = _SignIns(settings.lockout_failures, settings.lockout_s, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._flushing(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        client = scope.get("client")
        source = str(client[0]) if client else "-"
        area = ("public" if path.startswith(("/verify/", "/v1/documents/"))
                else "sign-in" if path == "/inbox" or path.startswith("/inbox/") else None)
        api = path.startswith(("/v1/", "/soap/"))  # where a token is asked for
        if area is None and not api:
            await self.app(scope, receive, send)
            return
        if area == "sign-in":
            locked = self.sign_ins.locked_for(source)
            if locked > 0:
                await self._refuse(scope, receive, send, "lockout", locked, source)
                return
        wait = self.areas[area].take(source) if area is not None else 0.0
        if wait > 0:
            await self._refuse(scope, receive, send, area or "", wait, source)
            return
        wait = self.areas["anonymous"].waiting(source) if api else 0.0
        if wait > 0:
            await self._refuse(scope, receive, send, "anonymous", wait, source)
            return

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._answered(scope, area, api, source, message["status"])
            await send(message)

        await self.app(scope, receive, watched)

    async def _answered(self, scope: Scope, area: str | None, api: bool, source: str,
                        status: int) -> None:
        if area == "sign-in":
            if status == 401:
                if self.sign_ins.failed(source):
                    await self._locked_out(scope, source)
            elif status < 400:
                self.sign_ins.succeeded(source)
        elif api and status >= 400 and "bus.client" not in scope and status != 429:
            self.areas["anonymous"].take(source)
            await self._anonymous(scope, source, self._outcome(scope, status))

    async def _anonymous(self, scope: Scope, source: str, outcome: str) -> None:
        path: str = scope["path"]
        service = path.removeprefix("/v1/services/").removeprefix("/soap/")
        service = service if service in self.services else "-"
        records = self.refusals.refused(source, route_label(path), outcome, service)
        await self.refusals.write(records)

    async def _locked_out(self, scope: Scope, source: str) -> None:
        self.metrics.sign_in_lockouts.inc()
        record = self.refusals.audit.refusal(
            message_id=new_id(), correlation=None, client="-", service=INBOX_SIGN_IN,
            user=f"source:{source} operator:{_operator_name(scope)}", purpose="-", subject=None,
            outcome="sign-in-locked", at=self.refusals.clock())
        await self.refusals.audit.record_refusal(record, kind="sign-in-lockout")

    @staticmethod
    def _outcome(scope: Scope, status: int) -> str:
        outcome = scope.get("bus.outcome")
        if isinstance(outcome, str) and _OUTCOME.fullmatch(outcome):
            return outcome
        return _BY_STATUS.get(status, "refused")

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, area: str, wait: float,
                      source: str) -> None:
        retry = max(1, math.ceil(wait))
        self.metrics.throttled(area).inc()
        scope["bus.outcome"] = RateLimited.code
        headers = {"Retry-After": str(retry)}
        if area in ("sign-in", "lockout"):
            why = ("too many failed sign-ins from your address" if area == "lockout"
                   else "too many requests from your address")
            response = page("Too many requests", f"<h1>Too many requests</h1><p>{why}; try "
                            f"again in {retry} s.</p>", 429, headers)
        else:
            error = RateLimited(f"too many requests from your address; retry after {retry} s",
                                retry_after_s=retry)
            response = problem_response(error, headers=headers)
        if area == "anonymous":
            await self._anonymous(scope, source, RateLimited.code)
        await response(scope, receive, send)

    def _flushing(self, receive: Receive) -> Receive:
        async def flushed() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.refusals.write(self.refusals.flush())
            return message

        return flushed

