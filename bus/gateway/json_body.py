"""Request bodies read as JSON, strictly: the one place the gateway decides what JSON it takes.

``read_json(body, content_type)`` is the rule; ``StrictJson`` runs it as a FastAPI dependency
on every route that takes a JSON body (a service, a bundle), after the caller is authenticated:

* a body that is not declared ``application/json`` (or ``application/<x>+json``), or has no
  ``Content-Type``, is 415 ``unsupported-media-type``;
* a body that is not UTF-8 JSON, nests deeper than ``MAX_DEPTH``, holds ``NaN`` or
  ``Infinity``, or repeats a key inside one object is 400 ``malformed-request``. A repeated key
  is never "last one wins": two parties reading the same bytes could otherwise see two
  different requests (the one the gateway checked, the one a provider or a log reads).

The problem says where (the key's path, the line and column), never the value sent.
"""
# No "from __future__ import annotations": FastAPI reads the dependency's annotations.

import json
import re
from typing import Annotated, Any

from fastapi import Depends, Request

from bus.core.errors import MalformedRequest, UnsupportedMediaType

__all__ = ["MAX_DEPTH", "StrictJson", "is_json_media_type", "read_json"]

MAX_DEPTH = 64
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")  # a key named in a problem; others are not


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or ``application/<anything>+json``, parameters ignored."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


class _Duplicate(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text`` (brackets inside strings not counted)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def read_json(body: bytes, content_type: str | None) -> Any:
    """The JSON value of a request ``body``; raises ``UnsupportedMediaType`` or
    ``MalformedRequest`` as the module says."""
    if not is_json_media_type(content_type):
        raise UnsupportedMediaType(
            "send the body as JSON with Content-Type: application/json"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("request body is not UTF-8") from None
    if _depth(text) > MAX_DEPTH:
        raise MalformedRequest(f"request body nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
    except _Duplicate as exc:
        key = str(exc)
        named = f"the key {key!r}" if _NAME.fullmatch(key) else "a key"
        raise MalformedRequest(
            f"request body repeats {named} in one object", errors=[
                {"loc": ["body"], "msg": "duplicate key", "type": "json_duplicate_key"}]
        ) from None
    except json.JSONDecodeError as exc:
        raise MalformedRequest(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:
        raise MalformedRequest(f"request body is not valid JSON: {exc}") from None


async def _strict_json(request: Request) -> None:
    body = await request.body()  # read once; FastAPI keeps it for the body parameter
    read_json(body, request.headers.get("content-type"))


StrictJson = Annotated[None, Depends(_strict_json)]
