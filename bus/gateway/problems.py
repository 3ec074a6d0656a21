"""RFC 9457 problem details for HTTP answers, from the bus error tree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from bus.core.errors import BusError

__all__ = [
    "MAX_ERRORS",
    "PROBLEM_MEDIA_TYPE",
    "Problem",
    "instance_of",
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
