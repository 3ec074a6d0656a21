"""The operator's page on the node: ``/inbox``, the tasks of the manual services, answered by hand.

``GET /inbox`` lists the open tasks of the agencies the official answers for, the soonest
deadline first, with when each must be answered (in the node's time zone, ``node.time_zone``)
and how long is left; ``GET /inbox/{id}`` shows one (who asks, for which purpose, the request,
the instructions; each showing is in the audit log as the signed-in official's reading) with a
form made from the service's shared response schema (``bus.gateway.schema_form``: date
inputs, selects for enums, a group per parent or property); ``POST /inbox/{id}/answer`` and ``POST
/inbox/{id}/reject`` close it through ``bus.inbox.desk.InboxDesk`` exactly as ``run_bus.py inbox``
does. An answer that does not match the schema comes back as the form (422) with each error
under its field and listed at the top, the values as typed kept; nothing is sent until it is
right. A task another official closed first says so, and by whom; nothing is sent.

Officials sign in on the page's form (``bus.gateway.inbox_session``: a session cookie, and
sign-out); scripts may send HTTP Basic credentials instead. ``inbox.operators`` holds each
password's SHA-256, the official's name shown on every page, and the members each may answer
for; another agency's task is a 404. Every page shows who is signed in and how many tasks wait.
Forms carry a token bound to the official and the task (HMAC with a key made at start), and a
request from another origin is refused, so another site cannot make a signed-in browser answer.
Pages are not cached (``bus.gateway.html.HEADERS``). They are in the language the request chose
(``bus.gateway.i18n``: ``?lang=``, which the pages' own links and forms keep, else
``Accept-Language``, else ``node.language``); the answer form's field labels come from the
shared schema as they are.
"""
# No "from __future__ import annotations": FastAPI reads the endpoint annotations.

import base64
import binascii
import functools
import hashlib
import hmac
import html
import logging
import re
import secrets
import zoneinfo
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from bus.config.settings import OperatorSettings
from bus.core.envelope import new_id, provider_of
from bus.core.errors import (
    AccessDenied,
    BusError,
    SchemaInvalid,
    TaskNotOpen,
    UnknownDocument,
)
from bus.gateway.html import flatten, label_of, page, table, utc_offset, when
from bus.gateway.i18n import Lang, choose
from bus.gateway.i18n.texts import TEXTS
from bus.gateway.inbox_forms import answer_form, challenge_response, reject_form, time_left
from bus.gateway.inbox_session import (
    COOKIE,
    INBOX_SIGN_IN,
    LIFETIME_S,
    Sessions,
    safe_next,
    sign_in_form,
)
from bus.gateway.schema_form import ADD, SchemaForm
from bus.inbox.desk import Closed, InboxDesk
from bus.inbox.store import Task
from bus.node.wiring import Node

__all__ = ["inbox_routes"]

log = logging.getLogger("bus.inbox")
STATE_KEYS = frozenset(k for k in TEXTS if k.startswith("inbox.state."))
_MAX_FORM = 256 * 1024
_OPERATOR_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")  # as inbox.operators names them


class _SignIn(Exception):
    """Not signed in (or wrong credentials): answered 401 with the sign-in form."""


def _basic(request: Request) -> tuple[str, str]:
    """The name and password of an HTTP Basic ``Authorization`` header."""
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        raise _SignIn
    try:
        name, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise _SignIn from None
    return name[:64], password


def _password_ok(operators: dict[str, OperatorSettings], name: str, password: str) -> bool:
    known = operators.get(name)
    digest = hashlib.sha256(password.encode()).hexdigest()
    # compared even for an unknown name, so timing tells nothing about which names exist
    expected = known.token_sha256 if known is not None else "0" * 64
    return hmac.compare_digest(digest, expected) and known is not None


def _form(raw: bytes) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace"),
                                         keep_blank_values=True).items()}


def inbox_routes(node: Node) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    operators = node.settings.inbox.operators
    zone = node.settings.node.time_zone
    form_key = secrets.token_bytes(32)
    sessions = Sessions(clock=lambda: node.seal.clock().timestamp())

    def desk() -> InboxDesk:
        if node.inbox is None:
            raise UnknownDocument("this node answers no service by hand (no manual adapter)")
        return node.inbox

    def csrf(operator: str, task_id: str) -> str:
        return hmac.new(form_key, f"{operator}\n{task_id}".encode(), hashlib.sha256).hexdigest()

    def locked_out(name: str, address: str) -> None:
        """Audit (without waiting) and count a name locked out from an address."""
        node.metrics.sign_in_lockouts.inc()
        node.audit.submit(node.audit.refusal(
            message_id=new_id(), correlation=None, client="-", service=INBOX_SIGN_IN,
            user=f"source:{address} operator:{name if _OPERATOR_NAME.fullmatch(name) else '-'}",
            purpose="-", subject=None, outcome="sign-in-locked", at=node.seal.clock()))

    def signed_in(request: Request) -> tuple[str, list[str]]:
        cookie = request.cookies.get(COOKIE)
        name = sessions.operator(cookie) if cookie else None
        if name is None:  # a script's Basic credentials, slowed like the form's
            name, password = _basic(request)
            address = request.client.host if request.client else "-"
            if sessions.refused(name, address):
                raise _SignIn
            if not _password_ok(operators, name, password):
                if sessions.failed(name, address):
                    locked_out(name, address)
                raise _SignIn
        known = operators.get(name)
        if known is None:  # removed from the configuration since
            raise _SignIn
        return name, known.members

    def services_of(members: list[str]) -> list[str]:
        return [s for s in desk().services if provider_of(s) in members]

    async def waiting(members: list[str]) -> list[Task]:
        return [t for s in services_of(members)
                for t in await run_in_threadpool(desk().tasks, service=s)]

    def title_of(service: str) -> str:
        settings = node.settings.services.get(service)
        return settings.title if settings is not None and settings.title else service

    def member_name(code: str) -> str:
        member = node.settings.members.get(code)
        return f"{member.name} ({code})" if member is not None and member.name else code

    def who(operator: str) -> str:
        """An official as people know them: ``Aziza Karimova (archivist)``."""
        known = operators.get(operator)
        return f"{known.name} ({operator})" if known is not None and known.name else operator

    def official(operator: str) -> str:
        return f"<b>{html.escape(who(operator))}</b>"

    def language(request: Request) -> Lang:
        return choose(request.query_params, request.headers, node.settings.node.language)

    async def frame(title: str, body: str, operator: str, members: list[str], lang: Lang,
                    status_code: int = 200) -> Response:
        count = len(await waiting(members))
        nav = (
            f"<a href='/inbox{lang.query}'>{lang.t('inbox.nav', count=count)}</a>"
            f"<span>{lang.t('inbox.signed_in_as')} {official(operator)}</span>"
            f"<form method='post' action='/inbox/sign-out{lang.query}'>"
            f"<input type='hidden' name='csrf' value='{csrf(operator, 'sign-out')}'>"
            f"<button type='submit'>{lang.t('inbox.sign_out')}</button></form>"
        )
        return page(title, body, status_code, nav=nav, lang=lang)

    def html_errors(
        endpoint: Callable[..., Awaitable[Response]],
    ) -> Callable[..., Awaitable[Response]]:
        """Refusals as pages (a browser shows them); not signed in: the sign-in form."""

        @functools.wraps(endpoint)
        async def wrapped(*args: Any, **kwargs: Any) -> Response:
            request: Request = kwargs["request"]
            lang = language(request)
            try:
                return await endpoint(*args, **kwargs)
            except _SignIn:
                target = request.url.path if request.method == "GET" else "/inbox"
                return page(lang.plain("inbox.sign_in"), sign_in_form(target, lang=lang), 401,
                            lang=lang)
            except BusError as exc:
                return challenge_response(exc, lang)

        return wrapped

    async def task_page(task: Task, operator: str, members: list[str], lang: Lang, *,
                        typed: dict[str, str] | None = None,
                        errors: dict[str, str] | None = None, note: str = "",
                        added: str = "", refused_code: str = "", status_code: int = 200
                        ) -> Response:
        """The task; ``refused_code``: its refusal came without a reason (shown at the field)."""
        now = node.seal.clock()
        state = (lang.t(f"inbox.state.{task.state}")
                 if f"inbox.state.{task.state}" in STATE_KEYS else html.escape(task.state))
        head = [
            (lang.plain("inbox.task"), f"<code>{html.escape(task.id)}</code>"),
            (lang.plain("inbox.asked_by"), html.escape(member_name(task.client))),
            (lang.plain("inbox.their_official"), html.escape(task.user)),
            (lang.plain("inbox.purpose"), html.escape(task.purpose)),
            (lang.plain("inbox.filed"), when(task.filed_at, zone)),
            (lang.plain("inbox.answer_by"),
             f"{when(task.expires_at, zone)} — {time_left(task, now, lang)}"),
            (lang.plain("inbox.state"), state),
        ]
        if task.state != "open" and task.operator:
            closed = when(task.closed_at, zone) if task.closed_at else ""
            head.append((lang.plain("inbox.closed_by"), f"{official(task.operator)} {closed}"))
        instructions = desk().instructions(task.service)
        if instructions:
            head.append((lang.plain("inbox.instructions"), html.escape(instructions)))
        request_rows = [(label_of(k), html.escape(v)) for k, v in flatten(task.request)]
        body = [f"<p><a href='/inbox{lang.query}'>{lang.t('inbox.back')}</a></p>",
                f"<h1>{html.escape(title_of(task.service))}</h1>"]
        if note:
            body.append(f"<p class='note bad' role='alert'>{html.escape(note)}</p>")
        body += [table(head, lang.plain("inbox.the_task")),
                 f"<h2>{lang.t('inbox.what_they_ask')}</h2>",
                 table(request_rows, lang.plain("inbox.the_request"))]
        if task.state == "open":
            token = csrf(operator, task.id)
            form = SchemaForm(desk().route(task.service).response_model)
            if typed is None:  # what the request already says (its PINFL, say), to start with
                typed = {k: str(v) for k, v in task.request.items()
                         if k in form.schema.get("properties", {}) and isinstance(v, str | int)}
            body.append(answer_form(task.id, token, form, typed, errors or {}, added, lang))
            body.append(reject_form(task.id, token, lang, code=refused_code or "no-data",
                                    missing=bool(refused_code)))
        else:
            body.append(f"<p>{lang.t('inbox.closed')}</p>")
        return await frame(title_of(task.service), "".join(body), operator, members, lang,
                           status_code)

    @router.get("/inbox/sign-in")
    async def sign_in_page(request: Request) -> Response:
        lang = language(request)
        note = lang.plain("inbox.signed_out") if request.query_params.get("out") else ""
        return page(lang.plain("inbox.sign_in"), sign_in_form(
            request.query_params.get("next", "/inbox"), note=note, lang=lang), lang=lang)

    @router.post("/inbox/sign-in")
    @html_errors
    async def sign_in(request: Request) -> Response:
        same_origin(request)
        lang = language(request)
        form = _form((await request.body())[:_MAX_FORM])
        name, password = form.get("name", "").strip()[:64], form.get("password", "")
        address = request.client.host if request.client else "-"
        wait = sessions.refused(name, address)
        if wait:
            log.warning("operator sign-in refused: too many attempts")
            return page(lang.plain("inbox.sign_in"), sign_in_form(
                form.get("next", "/inbox"), name=name, lang=lang,
                error=lang.plain("inbox.too_many", minutes=int(wait // 60) + 1)), 429, lang=lang)
        if not _password_ok(operators, name, password):
            if sessions.failed(name, address):
                locked_out(name, address)
            log.warning("operator sign-in refused")
            return page(lang.plain("inbox.sign_in"), sign_in_form(
                form.get("next", "/inbox"), name=name, lang=lang,
                error=lang.plain("inbox.wrong_password")), 401, lang=lang)
        previous = request.cookies.get(COOKIE)
        if previous:  # signing in again (as another official, say) ends the session before
            sessions.close(previous)
        response = RedirectResponse(lang.link(safe_next(form.get("next", "/inbox"))),
                                    status_code=303)
        response.set_cookie(COOKIE, sessions.open(name), max_age=LIFETIME_S, path="/inbox",
                            httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        log.info("operator signed in", extra={"bus": {"operator": name}})
        return response

    @router.post("/inbox/sign-out")
    @html_errors
    async def sign_out(request: Request) -> Response:
        operator, _ = signed_in(request)
        same_origin(request)
        form = _form((await request.body())[:_MAX_FORM])
        if not hmac.compare_digest(form.get("csrf", ""), csrf(operator, "sign-out")):
            raise AccessDenied("the form has expired; open the page again", reason="form-refused")
        cookie = request.cookies.get(COOKIE)
        if cookie:
            sessions.close(cookie)
        response = RedirectResponse(language(request).link("/inbox/sign-in?out=1"),
                                    status_code=303)
        response.delete_cookie(COOKIE, path="/inbox")
        return response

    @router.get("/inbox")
    @html_errors
    async def inbox(request: Request) -> Response:
        operator, members = signed_in(request)
        lang = language(request)
        tasks = sorted(await waiting(members), key=lambda t: (t.expires_at, t.filed_at))
        now = node.seal.clock()
        columns = ("answer_by", "service", "asked_by", "purpose", "filed")
        label = {c: lang.t(f"inbox.{c}") for c in columns}
        rows = "".join(
            "<tr>"
            f"<td data-label='{label['answer_by']}'>{when(t.expires_at, zone, offset=False)}"
            f"<br>{time_left(t, now, lang)}</td>"
            f"<td data-label='{label['service']}'><a href='/inbox/{quote(t.id)}{lang.query}'>"
            f"{html.escape(title_of(t.service))}<span class='sr'> "
            f"{lang.t('inbox.task_sr', task=t.id[:8])}</span></a></td>"
            f"<td data-label='{label['asked_by']}'>{html.escape(member_name(t.client))}</td>"
            f"<td data-label='{label['purpose']}'>{html.escape(t.purpose)}</td>"
            f"<td data-label='{label['filed']}'>{when(t.filed_at, zone, offset=False)}</td></tr>"
            for t in tasks
        )
        done = request.query_params.get("done", "")
        note = ""
        if done:
            said = "inbox.kept" if request.query_params.get("kept") else "inbox.done"
            note = f"<p class='note ok' role='status'>{lang.t(said, task=done[:8])}</p>"
        head = "".join(f"<th scope='col'>{label[c]}</th>" for c in columns)
        listing = (
            f"<table class='list'><caption class='sr'>{lang.t('inbox.caption')}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            if tasks else f"<p>{lang.t('inbox.nothing')}</p>"
        )
        offset = utc_offset(now.astimezone(zoneinfo.ZoneInfo(zone)))
        body = (f"<h1>{lang.t('inbox.heading')}</h1>{note}"
                f"<p>{lang.t('inbox.count', count=len(tasks), zone=zone, offset=offset)}</p>"
                f"{listing}")
        return await frame(lang.plain("inbox.title"), body, operator, members, lang)

    @router.get("/inbox/{task_id}")
    @html_errors
    async def show(task_id: str, request: Request) -> Response:
        operator, members = signed_in(request)
        task = await mine(task_id, members)
        read = await run_in_threadpool(lambda: desk().read(task.id, operator=operator))
        return await task_page(read, operator, members, language(request))

    async def mine(task_id: str, members: list[str]) -> Task:
        task = await run_in_threadpool(desk().task, task_id)
        if provider_of(task.service) not in members:
            raise UnknownDocument(f"no task {task_id!r} of yours")
        return task

    def same_origin(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise AccessDenied("a form from another site", reason="form-refused")

    async def posted(task_id: str, request: Request) -> tuple[str, list[str], Task,
                                                                dict[str, str]]:
        operator, members = signed_in(request)
        same_origin(request)
        raw = await request.body()
        if len(raw) > _MAX_FORM:
            raise AccessDenied("the form is too large", reason="form-refused")
        form = _form(raw)
        if not hmac.compare_digest(form.get("csrf", ""), csrf(operator, task_id)):
            raise AccessDenied("the form has expired; open the task again", reason="form-refused")
        return operator, members, await mine(task_id, members), form

    async def not_open(task: Task, operator: str, members: list[str], lang: Lang,
                       exc: TaskNotOpen) -> Response:
        now = await mine(task.id, members)
        note = exc.detail
        if now.state in ("answered", "rejected", "sending") and now.operator:
            done = "rejected" if now.state == "rejected" else "answered"
            note = (lang.plain(f"inbox.{done}_by_you") if now.operator == operator
                    else lang.plain(f"inbox.{done}_by", who=who(now.operator)))
        return await task_page(now, operator, members, lang, note=note, status_code=409)

    @router.post("/inbox/{task_id}/answer")
    @html_errors
    async def answer(task_id: str, request: Request) -> Response:
        operator, members, task, typed = await posted(task_id, request)
        lang = language(request)
        form = SchemaForm(desk().route(task.service).response_model)
        if typed.get(ADD):  # "Add another …": the same form with one more group
            return await task_page(task, operator, members, lang, typed=typed, added=typed[ADD])
        submitted = form.read(typed)
        if submitted.broken:
            return await task_page(task, operator, members, lang, typed=typed,
                                   errors=submitted.broken, status_code=422)
        try:
            closed = await run_in_threadpool(desk().answer, task.id, submitted.data,
                                             operator=operator)
        except SchemaInvalid as exc:
            errors: dict[str, str] = {}
            for e in exc.errors or []:
                loc = [str(p) for p in e.get("loc", [])]  # type: ignore[attr-defined]
                errors.setdefault(submitted.field(loc)[:200], form.explain(
                    loc, str(e.get("type", "")), str(e.get("msg", ""))))
            return await task_page(task, operator, members, lang, typed=typed, errors=errors,
                                   status_code=422)
        except TaskNotOpen as exc:
            return await not_open(task, operator, members, lang, exc)
        return _closed(task.id, closed, lang)

    @router.post("/inbox/{task_id}/reject")
    @html_errors
    async def reject(task_id: str, request: Request) -> Response:
        operator, members, task, form = await posted(task_id, request)
        code = form.get("code", "no-data")
        if code not in ("no-data", "provider-rejected"):
            code = "no-data"
        detail = form.get("detail", "").strip()[:500]
        if not detail:  # the asker is owed a reason: the form again, nothing sent
            return await task_page(task, operator, members, language(request),
                                   refused_code=code, status_code=422)
        try:
            closed = await run_in_threadpool(
                lambda: desk().reject(task.id, operator=operator, code=code,  # type: ignore[arg-type]
                                      detail=detail)
            )
        except TaskNotOpen as exc:
            return await not_open(task, operator, members, language(request), exc)
        return _closed(task.id, closed, language(request))

    return router


def _closed(task_id: str, closed: Closed, lang: Lang) -> Response:
    kept = "" if closed.delivered else "&kept=1"
    return RedirectResponse(lang.link(f"/inbox?done={quote(task_id)}{kept}"), status_code=303)
