"""The operator's desk: the tasks of this node's ``manual`` services, answered by a person.

A provider worker files each request of a ``manual`` service in the agency's operator inbox
(``bus.inbox.manual``) and acks it. ``InboxDesk`` is what an operator works with — the same for
``run_bus.py inbox list|show|answer|reject`` (``bus.cli.inbox``) and the node's ``/inbox`` page
(``bus.gateway.inbox``):

* ``read(id, operator=…)`` gives the task to show, once its reading is in the audit log
  (outcome ``read``): the request holds the person's identifiers;
* ``answer(id, data, operator=…)`` validates ``data`` against the service's shared response
  schema (``SchemaInvalid`` names the fields, never their values), refuses an answer about
  another person than the task's subject (``SchemaInvalid`` naming the field that
  ``SharedResponse.other_subject`` finds; the REST mappings check the same), re-checks the
  asker's access right and keeps only the fields it allows, signs the answer as the agency (its
  key on this node) and delivers it to the asker's reply queue;
* ``reject(id, code, detail, operator=…)`` answers with a signed error: ``no-data`` (nothing
  about this person) or ``provider-rejected`` (the request cannot be served).

Closing a task is one claim in the inbox (``open`` → ``sending`` with the signed answer, so two
operators cannot both answer), then the audit entry (side ``operator:<name>``), then the
publish, then ``answered``/``rejected``. If the audit entry cannot be written the claim is
undone and the operator told; if the transport refuses the publish (a broker away) or the
process stops before it, the signed answer stays with the task (``audited``) and
``resend_unsent`` delivers it (the operator is told after ``PUBLISH_TIMEOUT_S``) — run by the
node at start and every ``RESEND_EVERY_S`` seconds (``start_resender``), and by every desk
command — so nothing an operator answered is lost. The asker drops an answer it already has
(at-least-once).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from pydantic import BaseModel, ValidationError

from bus.config.routes import Route, Router
from bus.core.envelope import Envelope, Kind
from bus.core.errors import (
    AccessDenied,
    BusError,
    BusUnavailable,
    NoData,
    ProviderRejected,
    SchemaInvalid,
    TaskNotOpen,
    UnknownDocument,
)
from bus.core.seal import Seal
from bus.inbox.manual import ManualOptions, inbox_location
from bus.inbox.store import InboxUnavailable, OperatorInbox, Task, TaskClosed
from bus.policy.access import AccessPolicy, minimise
from bus.records.audit import AuditLog
from bus.transport import Message, Messaging

__all__ = [
    "REJECT_CODES",
    "Closed",
    "InboxDesk",
    "Waiting",
    "field_kinds",
    "manual_routes",
    "time_left",
]

log = logging.getLogger("bus.inbox")
REJECT_CODES: dict[str, type[BusError]] = {"no-data": NoData, "provider-rejected": ProviderRejected}
P = ParamSpec("P")
R = TypeVar("R")
RESEND_EVERY_S = 15.0  # how often a node looks for operator answers not delivered yet
# how long an operator waits for the transport to take an answer before being told it is kept
# (and the resender delivers it): not the 30 s a provider's reply may wait
PUBLISH_TIMEOUT_S = 5.0


def field_kinds(model: type[BaseModel]) -> dict[str, str]:
    """The JSON type of each top-level field of ``model`` (through ``anyOf: [X, null]``):
    how an operator's typed text is read — as it is for a string, as JSON otherwise."""
    out = {}
    for name, spec in model.model_json_schema().get("properties", {}).items():
        if "type" in spec:
            out[name] = str(spec["type"])
            continue
        options = [s for s in spec.get("anyOf", []) if s.get("type") != "null"]
        out[name] = str(options[0].get("type", "object")) if len(options) == 1 else "object"
    return out


def manual_routes(router: Router, hosts: list[str]) -> list[Route]:
    """The routes of ``hosts`` whose adapter is the operator inbox."""
    return [r for r in router.provided_by(hosts) if r.settings.adapter.kind == "manual"]


@dataclass(frozen=True)
class Closed:
    """A task answered: the signed answer, and whether the transport has it already (if not,
    it is kept and re-sent: ``start_resender``, ``resend_unsent``)."""

    envelope: Envelope
    delivered: bool


@dataclass(frozen=True)
class Waiting:
    service: str
    open_tasks: int
    oldest_s: float  # age of the oldest open task
    time_left_s: float  # until the first open task expires


@dataclass(frozen=True)
class _Desk:
    route: Route
    inbox: OperatorInbox
    instructions: str


def _inbox_errors(method: Callable[P, R]) -> Callable[P, R]:
    """An inbox that cannot be read or written (its PostgreSQL away, say) is ``BusUnavailable``
    to the operator: 503 on the page, a one-line error from the CLI."""

    @functools.wraps(method)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except InboxUnavailable as exc:
            raise BusUnavailable(str(exc)) from None

    return wrapped


class InboxDesk:
    def __init__(
        self,
        *,
        router: Router,
        hosts: list[str],
        data_dir: Path,
        seal: Seal,
        access: AccessPolicy,
        audit: AuditLog,
        transport: Messaging,
    ) -> None:
        self.seal, self.access, self.audit, self.transport = seal, access, audit, transport
        inboxes: dict[str, OperatorInbox] = {}
        self._desks: dict[str, _Desk] = {}
        for route in manual_routes(router, hosts):
            options = ManualOptions.model_validate(route.settings.adapter.options())
            where = inbox_location(options, data_dir)
            inbox = inboxes.get(where) or inboxes.setdefault(where, OperatorInbox(where))
            self._desks[route.service] = _Desk(route, inbox, options.instructions)
        self._inboxes = list(inboxes.values())
        self._stop = threading.Event()
        self._resender: threading.Thread | None = None

    def start_resender(self, every_s: float | None = None) -> None:
        """Deliver answers left unsent (the transport was away, or another process stopped
        between claim and publish) every ``every_s`` seconds, until ``close``."""
        interval = RESEND_EVERY_S if every_s is None else every_s

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.resend_unsent()
                except Exception as exc:  # the transport still away: next round
                    log.warning("operator answers not re-sent yet", extra={"bus": {
                        "error": type(exc).__name__}})

        self._resender = threading.Thread(target=run, name="inbox-resender", daemon=True)
        self._resender.start()

    @property
    def services(self) -> list[str]:
        return sorted(self._desks)

    def instructions(self, service: str) -> str:
        return self._desks[service].instructions if service in self._desks else ""

    def route(self, service: str) -> Route:
        return self._desks[service].route

    @_inbox_errors
    def tasks(self, *, states: tuple[str, ...] = ("open",), service: str | None = None,
              limit: int = 200) -> list[Task]:
        """Tasks in ``states``, oldest first, of one service or of all this desk serves."""
        services = [service] if service is not None else self.services
        out: list[Task] = []
        for inbox in self._inboxes:
            mine = [s for s in services if self._desks[s].inbox is inbox]
            if mine:
                out += inbox.tasks(states=states, services=mine, limit=limit)
        return sorted(out, key=lambda t: t.filed_at)[:limit]

    @_inbox_errors
    def task(self, task_id: str) -> Task:
        for inbox in self._inboxes:
            task = inbox.get(task_id)
            if task is not None and task.service in self._desks:
                return task
        raise UnknownDocument(f"no task {task_id!r} in the inboxes of this node")

    @_inbox_errors
    def read(self, task_id: str, *, operator: str) -> Task:
        """The task, for ``operator`` to read. It shows the person's identifiers, so the
        reading is audited first (side ``operator:<name>``, outcome ``read``): no entry, no task."""
        task = self.task(task_id)
        record = self.audit.exchange(Envelope.from_json(task.envelope), outcome="read",
                                     side=f"operator:{operator}")
        try:
            self.audit.write(record)
        except Exception as exc:
            raise BusUnavailable("the audit log cannot be written; the task is not shown") from exc
        return task

    @_inbox_errors
    def answer(self, task_id: str, data: dict[str, Any], *, operator: str) -> Closed:
        """Validate, minimise, sign and deliver the operator's answer to the task."""
        task = self._open(task_id)
        route = self._desks[task.service].route
        try:
            response = route.response_model.model_validate(data)
        except ValidationError as exc:
            raise SchemaInvalid.of(exc, route.response_model.__name__) from None
        request = Envelope.from_json(task.envelope)
        other = response.other_subject(route.request_model.model_validate(request.payload))
        if other is not None:  # a slip of the operator's: another person's data, not sent
            raise SchemaInvalid(
                f"{other} names another person than the task is about",
                errors=[{"loc": other.split("."), "type": "other-subject",
                         "msg": "not the person this task is about"}],
            )
        try:  # the right may have been withdrawn while the task waited
            right = self.access.check(request.client, request.service, request.purpose)
        except AccessDenied as exc:
            return self._close(task, request, Kind.error, exc.envelope_payload(), operator)
        payload = minimise(response.model_dump(mode="json"), right.fields)
        return self._close(task, request, Kind.response, payload, operator)

    @_inbox_errors
    def reject(
        self,
        task_id: str,
        *,
        operator: str,
        code: Literal["no-data", "provider-rejected"] = "no-data",
        detail: str = "",
    ) -> Closed:
        """Answer the task with a signed error (``no-data``: nothing about this person)."""
        if code not in REJECT_CODES:
            raise ValueError(f"reject code must be one of {', '.join(REJECT_CODES)}")
        task = self._open(task_id)
        error = REJECT_CODES[code](detail or "the agency's operator found nothing to answer with")
        request = Envelope.from_json(task.envelope)
        return self._close(task, request, Kind.error, error.envelope_payload(), operator)

    @_inbox_errors
    def waiting(self) -> list[Waiting]:
        """What waits for an operator, per service of this desk (for ``bus.ops.metrics``)."""
        now = self.seal.clock().timestamp()
        return [
            Waiting(service, count, now - oldest, first_expiry - now)
            for inbox in self._inboxes
            for service, count, oldest, first_expiry in inbox.waiting()
            if service in self._desks
        ]

    @_inbox_errors
    def resend_unsent(self) -> int:
        """Deliver answers stored but not known to be delivered; how many. One whose audit
        entry is not known to be written gets it (again, possibly: never none) first."""
        count = 0
        for inbox in self._inboxes:
            for task in inbox.unsent():
                if task.service not in self._desks:
                    continue
                assert task.answer is not None
                if task.state == "sending":
                    self._audit(Envelope.from_json(task.envelope), task.outcome or "ok",
                                task.operator or "-", task.answer)
                    inbox.audited(task.id)
                self._send(task, task.answer)
                count += 1
        if count:
            log.info("resent operator answers", extra={"bus": {"count": count}})
        return count

    def close(self) -> None:
        self._stop.set()
        if self._resender is not None:
            self._resender.join(timeout=5)
        for inbox in self._inboxes:
            inbox.close()

    # -- closing a task ---------------------------------------------------------------------------

    def _open(self, task_id: str) -> Task:
        task = self.task(task_id)
        if task.state != "open" or task.expires_at <= self.seal.clock().timestamp():
            state = task.state if task.state != "open" else "expired"
            raise TaskNotOpen(f"task {task_id} is {state}; it cannot be answered now")
        return task

    def _close(
        self, task: Task, request: Envelope, kind: Kind, payload: dict[str, Any], operator: str
    ) -> Closed:
        signed = self.seal.sign(request.reply(kind, payload, now=self.seal.clock()))
        body = signed.to_json()
        outcome = "ok" if kind is Kind.response else str(payload["code"])
        inbox = self._desks[task.service].inbox
        try:
            inbox.close_task(task.id, operator=operator, outcome=outcome, answer=body)
        except TaskClosed as exc:
            raise TaskNotOpen(str(exc)) from None
        try:
            self._audit(request, outcome, operator, body)
        except Exception as exc:
            inbox.reopen(task.id)
            raise BusUnavailable("the audit log cannot be written; the task stays open") from exc
        inbox.audited(task.id)
        delivered = True
        try:
            self._send(task, body)
        except BusError as exc:  # kept as sending: re-sent by the node's resender, or later
            delivered = False
            log.warning("operator answer kept, not delivered yet", extra={"bus": {
                "message_id": task.id, "service": task.service, "error": exc.code}})
        log.info("operator answered", extra={"bus": {
            "message_id": task.id, "service": task.service, "client": task.client,
            "outcome": outcome, "operator": operator}})
        return Closed(signed, delivered)

    def _audit(self, request: Envelope, outcome: str, operator: str, answer: bytes) -> None:
        self.audit.write(self.audit.exchange(
            request, outcome=outcome, side=f"operator:{operator}", answer=answer
        ))

    def _send(self, task: Task, body: bytes) -> None:
        reply = Envelope.from_json(body)
        self.transport.publish(
            task.reply_to,
            Message(body=body, message_id=reply.id, correlation_id=task.id,
                    expires_at=task.expires_at),
            timeout_s=PUBLISH_TIMEOUT_S,
        )
        self._desks[task.service].inbox.sent(task.id)


def time_left(task: Task, now: dt.datetime) -> str:
    """How long the asker still waits for the answer to ``task``, as an operator reads it
    (``2 days, 23:59:57``)."""
    return str(dt.timedelta(seconds=int(max(task.expires_at - now.timestamp(), 0.0))))
