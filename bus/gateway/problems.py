"""RFC 9457 problem details for HTTP answers, from the bus error tree.

``problem_response`` renders a ``BusError`` (English ``title``, the error class's). Whatever
made a problem document — a route's handler, a middleware, a stored asynchronous result —
``ProblemLanguage`` (around the whole app) gives every ``application/problem+json`` answer its
``title`` in the language the request chose (``bus.gateway.i18n``: ``?lang=``,
``Accept-Language``, the node's default), with ``Content-Language`` and ``Vary:
Accept-Language``; ``type``, ``code`` and ``detail`` are left as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus.core.errors import BusError
from bus.gateway.i18n import from_scope, problem_title

__all__ = [
    "MAX_ERRORS",
    "PROBLEM_MEDIA_TYPE",
    "Problem",
    "ProblemLanguage",
    "instance_of",
    "localized",
    "problem_body",
    "problem_response",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
MAX_ERRORS = 20  # a problem lists at most this many errors (the detail still counts them all)


class Problem(BaseModel):
    """An RFC 9457 problem document, with the bus's extension members."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    code: str
    message_id: str | None = None
    service: str | None = None
    errors: list[dict[str, Any]] | None = None


def instance_of(scope: Mapping[str, Any]) -> str | None:
    """The ``instance`` of a problem: the route that refused, as the API names it (a path
    template such as ``/v1/messages/{message_id}``), never the raw path a caller sent, which may
    carry anything (an identifier, a PINFL); None when no route matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def problem_response(
    error: BusError,
    *,
    instance: str | None = None,
    status: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = problem_body(error, instance=instance, status=status)
    if error.message_id:
        headers = {**(headers or {}), "X-Bus-Message-Id": error.message_id}
    return Response(
        orjson.dumps(body),
        status_code=body["status"],
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def problem_body(
    error: BusError, *, instance: str | None = None, status: int | None = None
) -> dict[str, Any]:
    """The problem document of ``error`` (``Problem``'s fields that are set)."""
    body: dict[str, Any] = {
        "type": error.type_uri,
        "title": error.title,
        "status": status or error.status,
        "detail": error.detail,
        "code": error.code,
    }
    if instance:
        body["instance"] = instance
    if error.message_id:
        body["message_id"] = error.message_id
    if error.service:
        body["service"] = error.service
    if error.errors:
        body["errors"] = error.errors[:MAX_ERRORS]
    return body


def localized(body: dict[str, Any], lang: str) -> dict[str, Any]:
    """A problem document (or a bundle part's ``problem``) with its title in ``lang``."""
    code, title = body.get("code"), body.get("title")
    if lang == "en" or not isinstance(code, str) or not isinstance(title, str):
        return body
    return {**body, "title": problem_title(code, lang, title)}


class ProblemLanguage:
    """Every problem+json answer of the app, its ``title`` in the request's language (see the
    module docstring). Only problem answers are read (they are small and never streamed);
    every other answer passes untouched."""

    def __init__(self, app: ASGIApp, default: str) -> None:
        self.app = app
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def translated(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and _is_problem(message["headers"]):
                start = message  # sent with the body, once its length is known
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            lang = from_scope(scope, self.default)  # only for problems: not on every answer
            if lang != "en":
                try:
                    document = orjson.loads(body)
                except orjson.JSONDecodeError:
                    document = None
                if isinstance(document, dict):
                    body = orjson.dumps(localized(document, lang))
            headers = MutableHeaders(scope=start)
            headers["content-length"] = str(len(body))
            headers["content-language"] = lang
            headers.append("vary", "Accept-Language")
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, translated)


def _is_problem(raw: list[tuple[bytes, bytes]]) -> bool:
    """Whether raw ASGI response headers say ``application/problem+json`` (no copy made)."""
    return any(k.lower() == b"content-type" and v.startswith(_PROBLEM_TYPE) for k, v in raw)


_PROBLEM_TYPE = PROBLEM_MEDIA_TYPE.encode()
