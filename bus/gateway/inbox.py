"""The operator's page on the node: ``/inbox``, the tasks of the manual services, answered by hand.

``GET /inbox`` lists the open tasks of the agencies the operator answers for; ``GET
/inbox/{id}`` shows one (who asks, for which purpose, the request, the instructions; each
showing is in the audit log as the signed-in operator's reading) with a form
made from the service's shared response schema — one field per property, a JSON box for nested
ones (pre-filled with an example shape); ``POST /inbox/{id}/answer`` and ``POST
/inbox/{id}/reject`` close it through ``bus.inbox.desk.InboxDesk`` exactly as ``run_bus.py inbox``
does. An answer that does not match the schema comes back as the form with every field in error
named (422), the values as typed kept; nothing is sent until it is right.

Operators sign in with HTTP Basic (name and password; ``inbox.operators`` holds the password's
SHA-256 and the members each may answer for); another agency's task is a 404. Forms carry a
token bound to the operator and the task (HMAC with a key made at start), and a request from
another origin is refused, so another site cannot make a signed-in browser answer. Pages are
not cached (``bus.gateway.html.HEADERS``).
"""
# No "from __future__ import annotations": FastAPI reads the endpoint annotations.

import base64
import binascii
import datetime as dt
import functools
import hashlib
import hmac
import html
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from bus.config.settings import OperatorSettings
from bus.core.envelope import provider_of
from bus.core.errors import (
    AccessDenied,
    BusError,
    SchemaInvalid,
    TaskNotOpen,
    Unauthenticated,
    UnknownDocument,
)
from bus.gateway.html import flatten, page, table
from bus.inbox.desk import Closed, InboxDesk, field_kinds, time_left
from bus.inbox.store import Task
from bus.node.wiring import Node

__all__ = ["inbox_routes"]

log = logging.getLogger("bus.inbox")
_MAX_FORM = 256 * 1024
_SIMPLE = {"string", "integer", "number", "boolean"}


class _SignIn(Exception):
    """No or wrong credentials: answered 401 with the Basic challenge."""


def _operator(request: Request, operators: dict[str, OperatorSettings]) -> tuple[str, list[str]]:
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        raise _SignIn
    try:
        name, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise _SignIn from None
    known = operators.get(name)
    digest = hashlib.sha256(password.encode()).hexdigest()
    # compared even for an unknown name, so timing tells nothing about which names exist
    expected = known.token_sha256 if known is not None else "0" * 64
    if not hmac.compare_digest(digest, expected) or known is None:
        raise _SignIn
    return name, known.members


def _fields(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    required = set(schema.get("required", []))
    return [(name, spec, name in required) for name, spec in schema.get("properties", {}).items()]


def _form_data(raw: bytes, model: type[BaseModel]) -> tuple[dict[str, str], dict[str, Any],
                                                              dict[str, str]]:
    """(fields as typed, the answer to validate, JSON boxes that do not parse)."""
    schema = model.model_json_schema()
    form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace"),
                                         keep_blank_values=True).items()}
    data: dict[str, Any] = {}
    broken: dict[str, str] = {}
    kinds = field_kinds(model)
    for name, _, _ in _fields(schema):
        value = form.get(name, "").strip()
        if not value:
            continue
        if kinds[name] in _SIMPLE:
            data[name] = value  # pydantic turns "2020-01-02" into a date, "3" into 3
        else:
            try:
                data[name] = orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                broken[name] = f"not JSON: {exc}"
    return form, data, broken


def _html_errors(
    endpoint: Callable[..., Awaitable[Response]],
) -> Callable[..., Awaitable[Response]]:
    """Refusals as pages (a browser shows them), 401 with the Basic challenge."""

    @functools.wraps(endpoint)
    async def wrapped(*args: Any, **kwargs: Any) -> Response:
        try:
            return await endpoint(*args, **kwargs)
        except BusError as exc:
            return challenge_response(exc)

    return wrapped


def inbox_routes(node: Node) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    operators = node.settings.inbox.operators
    form_key = secrets.token_bytes(32)

    def desk() -> InboxDesk:
        if node.inbox is None:
            raise UnknownDocument("this node answers no service by hand (no manual adapter)")
        return node.inbox

    def csrf(operator: str, task_id: str) -> str:
        return hmac.new(form_key, f"{operator}\n{task_id}".encode(), hashlib.sha256).hexdigest()

    def signed_in(request: Request) -> tuple[str, list[str]]:
        try:
            return _operator(request, operators)
        except _SignIn:
            raise Unauthenticated("sign in with your operator name and password") from None

    async def mine(task_id: str, members: list[str]) -> Task:
        task = await run_in_threadpool(desk().task, task_id)
        if provider_of(task.service) not in members:
            raise UnknownDocument(f"no task {task_id!r} of yours")
        return task

    def task_page(task: Task, operator: str, *, typed: dict[str, str] | None = None,
                  errors: dict[str, str] | None = None, note: str = "",
                  status_code: int = 200) -> Response:
        route = desk().route(task.service)
        left = time_left(task, node.seal.clock())
        head = [
            ("service", html.escape(route.settings.title or task.service)),
            ("asked by", html.escape(task.client)),
            ("official", html.escape(task.user)),
            ("purpose", html.escape(task.purpose)),
            ("state", html.escape(task.state)),
            ("answer within", html.escape(left)),
        ]
        instructions = desk().instructions(task.service)
        if instructions:
            head.append(("instructions", html.escape(instructions)))
        request_rows = [(k, html.escape(v)) for k, v in flatten(task.request)]
        body = [f"<p><a href='/inbox'>← inbox</a></p><h1>Task {html.escape(task.id)}</h1>",
                table(head), "<h2>Request</h2>", table(request_rows)]
        if note:
            body.append(f"<p class='bad'>{html.escape(note)}</p>")
        if task.state == "open":
            token = csrf(operator, task.id)
            body.append(_answer_form(task.id, token, route.response_model, typed or {},
                                     errors or {}))
            body.append(_reject_form(task.id, token))
        return page(f"Task {task.id}", "".join(body), status_code)

    @router.get("/inbox")
    @_html_errors
    async def inbox(request: Request) -> Response:
        operator, members = signed_in(request)
        services = [s for s in desk().services if provider_of(s) in members]
        tasks = [t for s in services for t in await run_in_threadpool(desk().tasks, service=s)]
        now = node.seal.clock()
        rows = "".join(
            f"<tr><td><a href='/inbox/{html.escape(t.id)}'>{html.escape(t.id[:8])}…</a></td>"
            f"<td>{html.escape(t.service)}</td><td>{html.escape(t.client)}</td>"
            f"<td>{html.escape(t.purpose)}</td>"
            f"<td>{dt.datetime.fromtimestamp(t.filed_at, dt.UTC):%Y-%m-%d %H:%M}</td>"
            f"<td>{html.escape(time_left(t, now))}</td></tr>"
            for t in sorted(tasks, key=lambda t: t.filed_at)
        )
        done = request.query_params.get("done", "")
        note = f"<p class='ok'>Task {html.escape(done)} is closed.</p>" if done else ""
        if done and request.query_params.get("kept"):
            note = (f"<p class='ok'>Task {html.escape(done)} is closed; the bus cannot deliver "
                    "its answer right now and keeps it: it goes out as soon as it can.</p>")
        return page("Operator inbox", (
            f"<h1>Operator inbox</h1><p>Signed in as {html.escape(operator)}; "
            f"{len(tasks)} open task(s).</p>{note}<table><tr><th>task</th><th>service</th>"
            f"<th>asked by</th><th>purpose</th><th>filed (UTC)</th><th>time left</th></tr>"
            f"{rows}</table>"
        ))

    @router.get("/inbox/{task_id}")
    @_html_errors
    async def show(task_id: str, request: Request) -> Response:
        operator, members = signed_in(request)
        task = await mine(task_id, members)
        return task_page(await run_in_threadpool(lambda: desk().read(task.id, operator=operator)),
                         operator)

    async def posted(task_id: str, request: Request) -> tuple[str, Task, bytes]:
        operator, members = signed_in(request)
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise AccessDenied("a form from another site", reason="form-refused")
        raw = await request.body()
        if len(raw) > _MAX_FORM:
            raise AccessDenied("the form is too large", reason="form-refused")
        token = parse_qs(raw.decode("utf-8", "replace")).get("csrf", [""])[-1]
        if not hmac.compare_digest(token, csrf(operator, task_id)):
            raise AccessDenied("the form has expired; open the task again", reason="form-refused")
        return operator, await mine(task_id, members), raw

    @router.post("/inbox/{task_id}/answer")
    @_html_errors
    async def answer(task_id: str, request: Request) -> Response:
        operator, task, raw = await posted(task_id, request)
        typed, data, broken = _form_data(raw, desk().route(task.service).response_model)
        if broken:
            return task_page(task, operator, typed=typed, errors=broken, status_code=422,
                             note="Some fields are not valid; nothing was sent.")
        try:
            closed = await run_in_threadpool(desk().answer, task.id, data, operator=operator)
        except SchemaInvalid as exc:
            errors = {".".join(map(str, e["loc"]))[:200]: str(e["msg"])  # type: ignore[call-overload]
                      for e in exc.errors or []}
            return task_page(task, operator, typed=typed, errors=errors, status_code=422,
                             note="Some fields are not valid; nothing was sent.")
        except TaskNotOpen as exc:
            return task_page(await mine(task_id, [provider_of(task.service)]), operator,
                             note=exc.detail, status_code=409)
        return _closed(task.id, closed)

    @router.post("/inbox/{task_id}/reject")
    @_html_errors
    async def reject(task_id: str, request: Request) -> Response:
        operator, task, raw = await posted(task_id, request)
        form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        code = form.get("code", "no-data")
        if code not in ("no-data", "provider-rejected"):
            code = "no-data"
        try:
            closed = await run_in_threadpool(
                lambda: desk().reject(task.id, operator=operator, code=code,  # type: ignore[arg-type]
                                      detail=form.get("detail", "")[:500])
            )
        except TaskNotOpen as exc:
            return task_page(task, operator, note=exc.detail, status_code=409)
        return _closed(task.id, closed)

    return router


def _closed(task_id: str, closed: Closed) -> Response:
    kept = "" if closed.delivered else "&kept=1"
    return RedirectResponse(f"/inbox?done={task_id}{kept}", status_code=303)


def challenge_response(exc: BusError) -> Response:
    """The page of a refused inbox request (the app's error handler calls it for ``/inbox``)."""
    headers = {"WWW-Authenticate": 'Basic realm="bus operator inbox", charset="UTF-8"'} \
        if exc.status == 401 else {}
    return page(exc.title, f"<h1>{html.escape(exc.title)}</h1><p>{html.escape(exc.detail)}</p>",
                exc.status, headers)


def _answer_form(task_id: str, token: str, model: type[BaseModel], typed: dict[str, str],
                 errors: dict[str, str]) -> str:
    parts = [f"<h2>Answer</h2><form method='post' action='/inbox/{html.escape(task_id)}/answer'>"
             f"<input type='hidden' name='csrf' value='{token}'>"]
    schema, kinds = model.model_json_schema(), field_kinds(model)
    defs = schema.get("$defs", {})
    for name, spec, required in _fields(schema):
        kind = kinds[name]
        label = f"{name}{' *' if required else ''}"
        if spec.get("description"):
            label += f" — {spec['description']}"
        value = typed.get(name, "")
        parts.append(f"<label for='f-{name}'>{html.escape(label)}</label>")
        if kind in _SIMPLE:
            fmt = spec.get("format") or next((s.get("format") for s in spec.get("anyOf", [])
                                              if s.get("format")), None)
            input_type = {"date": "date", "integer": "number"}.get(fmt or kind, "text")
            parts.append(f"<input id='f-{name}' name='{name}' type='{input_type}' "
                         f"value='{html.escape(value)}'>")
        else:
            example = value or _example(spec, defs)
            rows = min(example.count("\n") + 2, 16)
            parts.append(f"<textarea id='f-{name}' name='{name}' rows='{rows}'>"
                         f"{html.escape(example)}</textarea>")
        mine = {k: v for k, v in errors.items() if k == name or k.startswith(name + ".")}
        for where, message in mine.items():
            parts.append(f"<div class='bad'>{html.escape(where)}: {html.escape(message)}</div>")
    answer_errors = {k: v for k, v in errors.items() if not k or k == "(answer)"}
    for message in answer_errors.values():
        parts.append(f"<div class='bad'>{html.escape(message)}</div>")
    parts.append("<button type='submit'>Sign and send the answer</button></form>")
    return "".join(parts)


def _reject_form(task_id: str, token: str) -> str:
    return (
        f"<h2>Or reject</h2><form method='post' action='/inbox/{html.escape(task_id)}/reject'>"
        f"<input type='hidden' name='csrf' value='{token}'>"
        "<label for='code'>why</label><select id='code' name='code'>"
        "<option value='no-data'>nothing about this person (no-data)</option>"
        "<option value='provider-rejected'>the request cannot be served</option></select>"
        "<label for='detail'>told to the asker</label><input id='detail' name='detail'>"
        "<button type='submit'>Sign and send the refusal</button></form>"
    )


def _example(spec: dict[str, Any], defs: dict[str, Any]) -> str:
    """An empty shape of a nested property, for the operator to fill in."""
    def shape(s: dict[str, Any]) -> Any:
        if "$ref" in s:
            return shape(defs.get(s["$ref"].split("/")[-1], {}))
        if s.get("type") == "array":
            return [shape(s.get("items", {}))]
        if s.get("type") == "object" or "properties" in s:
            return {k: shape(v) for k, v in s.get("properties", {}).items()}
        options = [o for o in s.get("anyOf", []) if o.get("type") != "null"]
        if options:
            return shape(options[0])
        return "" if s.get("type") == "string" else None

    return orjson.dumps(shape(spec), option=orjson.OPT_INDENT_2).decode()
