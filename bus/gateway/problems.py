"""RFC 9457 problem details for HTTP answers, from the bus error tree."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from bus.core.errors import BusError

__all__ = ["MAX_ERRORS", "PROBLEM_MEDIA_TYPE", "Problem", "problem_body", "problem_response"]

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
