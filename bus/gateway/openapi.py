"""The node's OpenAPI document, made to tell the truth about what each route answers.

FastAPI derives a document from the routes' annotations; it knows nothing of the refusals that
come from the bus's own checks, of the content negotiation of the document pages, or of what a
client really receives after field minimisation. ``truthful_openapi(app, node)`` replaces
``app.openapi`` with a builder that takes FastAPI's document and then, in one place:

* declares the bearer token as a security scheme (``bearer``) on every route that reads it,
  instead of an ``Authorization`` header parameter;
* lists, per route, every status it can answer (``ANSWERS``) — refusals as RFC 9457
  ``application/problem+json`` documents (``Problem``, its ``errors`` list capped at
  ``MAX_ERRORS``), 429 with ``Retry-After``, 202 with its ``Location`` — and drops FastAPI's
  ``HTTPValidationError``, which the gateway never sends;
* gives the document pages both their forms: ``text/html`` and ``application/json``;
* shows a service's answer as the client gets it: the provider's payload after field
  minimisation, so every field of the payload is optional (``<Model>AsSeen``);
* marks a route that answers only asynchronously (``async_only``: ``mode=async`` required),
  and gives identifiers their patterns (UUIDs, request numbers, PINFL);
* on the asking routes (``POST /v1/services/…``, ``POST /v1/bundles``): the request headers the
  gateway reads beside FastAPI's parameters, ``Idempotency-Key`` (``bus.gateway.idempotency``)
  and ``X-Bus-Callback`` (``bus.policy.callbacks``), the 409 ``idempotency-key-in-use`` with its
  ``Retry-After``, and ``Idempotent-Replayed`` on an answer given again; a service's
  ``X-Bus-Purpose`` as the purposes this node's access rights name for it (what the public
  catalogue lists: any other is refused 403), and an ``X-Bus-User`` that may not be a personal
  identifier (``bus.gateway.params``);
* any method a path does not declare: 405 with ``Allow`` (``components.responses``).

``tests/hostile/test_openapi_contract.py`` runs schemathesis against the demo node with every
check: each answer must match this document.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from bus.gateway.i18n import LANGUAGES
from bus.gateway.idempotency import KEY_PATTERN
from bus.gateway.params import CORRELATION_PATTERN, PERSONAL_PATTERN
from bus.gateway.problems import MAX_ERRORS, PROBLEM_MEDIA_TYPE, Problem
from bus.node.wiring import Node
from bus.policy.callbacks import MAX_URL
from schemas.identifiers import PINFL_PATTERN

__all__ = ["ANSWERS", "truthful_openapi"]

_NUMBER_PATTERN = r"^BUS-[0-9]{4}-[0-9]{6,}-[0-9]$"
_DESCRIPTIONS = {
    200: "OK",
    202: "Accepted: kept and answered later (see Location)",
    400: "Malformed request: a header, query or body that is not what the route reads",
    401: "Missing or unknown API token",
    403: "No access right for this client, service and purpose (or a signature refused)",
    404: "Unknown service, document, request or bundle (or the provider holds no data)",
    408: "The request body did not arrive in time (http.body_timeout_s)",
    409: "Conflict: the Idempotency-Key's first request is still being answered (see "
         "Retry-After), or an envelope replayed",
    410: "The document's signed answer was deleted after its retention period",
    413: "Body too large",
    415: "Body not sent as application/json",
    422: "Body does not match the route's schema (or a callback URL refused)",
    429: "Too many requests (the member's rate limit, or this source's): see Retry-After",
    502: "Provider unavailable or answered wrongly",
    503: "Provider paused by its circuit breaker, or the bus unavailable",
    504: "No answer within the deadline",
}
_ASKED = (400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 502, 503, 504)
_RESULT = (400, 403, 404, 409, 502, 503, 504)  # what a kept asynchronous result may be
# (method, path pattern) -> the problem statuses that route answers besides its successes.
ANSWERS: list[tuple[str, str, tuple[int, ...]]] = [
    ("post", r"/v1/services/.+", _ASKED),
    ("post", r"/v1/bundles", (400, 401, 408, 409, 413, 415, 422, 429)),
    ("get", r"/v1/bundles/\{correlation\}", (401, 404, 429)),
    ("get", r"/v1/messages/\{message_id\}", (401, 404, 429, *_RESULT)),
    ("get", r"/v1/documents/\{number\}", (401, 404, 410, 429)),
    ("get", r"/verify/\{number\}", (404, 429)),
    ("get", r"/v1/citizens/me/access-log", (400, 401, 403, 422, 429)),
    ("get", r"/v1/services", (401, 429)),
    ("get", r"/v1/catalog.*", (404, 429)),
    ("get", r"/health/ready", ()),
    ("get", r"/health/live", ()),
    ("get", r"/metrics", ()),
]
_PUBLIC = {
    "/verify/{number}", "/health/live", "/health/ready", "/metrics",
    # the service catalogue: for a new agency's developer, before any token (bus.gateway.catalog)
    "/v1/catalog", "/v1/catalog.schema.json", "/v1/catalog/{member}/{service}/{version}",
    "/v1/catalog/{member}/{service}/{version}/{part}.schema.json",
}
# The citizen's report asked with a member token needs these; with a citizen's ID token they are
# left out (the person is the token's), which the route's description says.
_MEMBER_HEADERS = {"X-Bus-Subject", "X-Bus-Purpose", "X-Bus-User"}
_PATH_PATTERNS = {
    "correlation": CORRELATION_PATTERN,
    "message_id": CORRELATION_PATTERN,
    "number": _NUMBER_PATTERN,
}


def _problem(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": _DESCRIPTIONS[status],
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    answer["headers"] = {"Content-Language": {
        "description": "the language of the problem's title (bus.gateway.i18n: ?lang=, else "
                       "Accept-Language, else the node's; detail stays English)",
        "schema": {"type": "string", "enum": list(LANGUAGES)}}}
    if status == 429:
        answer["headers"]["Retry-After"] = {
            "description": "seconds until a request may pass again", "required": True,
            "schema": {"type": "integer", "minimum": 0}}
    return answer


def _asking(node: Node, service: str | None, op: dict[str, Any]) -> None:
    """What an asking route (a service's, or the bundles') reads and answers beside FastAPI's
    parameters (see the module docstring); ``service``: the service id, None for bundles."""
    purposes = sorted({purpose for right in node.settings.access
                       if right.service == service for purpose in right.purpose})
    for p in op["parameters"]:
        if p["name"] == "X-Bus-Purpose" and purposes:
            p["schema"] = {"type": "string", "enum": purposes}
            p["description"] = ("a purpose this node's access rights allow for this service; "
                                "the client's own right decides (else 403)")
    scheme = "https" if node.settings.callbacks.require_https else "http(s)"
    op["parameters"] += [
        {"name": "Idempotency-Key", "in": "header", "required": False,
         "description": "the client's name for this request: a retry with the same key within "
                        "24 hours gets the first answer again (Idempotent-Replayed), nothing "
                        "is asked twice; the same key with another request is 422 "
                        "idempotency-key-reused, while the first is answered 409",
         "schema": {"type": "string", "pattern": KEY_PATTERN}},
        {"name": "X-Bus-Callback", "in": "header", "required": False,
         "description": f"read with mode=async only (ignored otherwise, so any text is taken "
                        f"then): where the result is also POSTed, an {scheme} URL of at most "
                        f"{MAX_URL} characters (else 400) naming a host the node's callback "
                        "policy allows, never a private address (else 422 callback-refused)",
         "schema": {"type": "string"}},
    ]
    for status, answer in op["responses"].items():
        headers = answer.setdefault("headers", {})
        headers["Idempotent-Replayed"] = {
            "description": "true: this is the answer kept for the request's Idempotency-Key, "
                           "given again", "schema": {"type": "string", "enum": ["true"]}}
        if status == "409":
            headers["Retry-After"] = {
                "description": "with idempotency-key-in-use: seconds until the key's first "
                               "request should be answered", "schema": {"type": "integer",
                                                                        "minimum": 0}}


_METHOD_NOT_ALLOWED = {
    "description": "Any method a path does not declare: a problem, with the methods it answers",
    "headers": {"Allow": {"description": "the methods this path answers", "required": True,
                          "schema": {"type": "string"}}},
    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _statuses(method: str, path: str) -> tuple[int, ...]:
    for m, pattern, statuses in ANSWERS:
        if m == method and re.fullmatch(pattern, path):
            return statuses
    return (400, 401, 404, 429)


def _as_seen(doc: dict[str, Any], envelope: str) -> None:
    """The envelope's payload as a client sees it after minimisation: every field optional."""
    schemas = doc["components"]["schemas"]
    payload = schemas[envelope]["properties"]["payload"]
    name = payload["$ref"].rsplit("/", 1)[-1]
    seen = copy.deepcopy(schemas[name])
    seen.pop("required", None)
    seen["title"] = f"{seen.get('title', name)} (the fields the client's access right shows)"
    schemas[f"{name}AsSeen"] = seen
    schemas[envelope]["properties"]["payload"] = {"$ref": f"#/components/schemas/{name}AsSeen"}


def _operation(doc: dict[str, Any], node: Node, path: str, method: str,
               op: dict[str, Any]) -> None:
    params = op.get("parameters", [])
    op["parameters"] = [p for p in params
                        if not (p["in"] == "header" and p["name"].lower() == "authorization")]
    if path not in _PUBLIC:
        op["security"] = [{"bearer": []}]
    for p in op["parameters"]:
        options = p["schema"].get("anyOf", [])
        if any(o.get("type") == "null" for o in options):  # optional: absent, never "null"
            p["schema"] = next(o for o in options if o.get("type") != "null")
        if p["in"] == "path" and p["name"] in _PATH_PATTERNS:
            p["schema"] = {"type": "string", "pattern": _PATH_PATTERNS[p["name"]]}
        if p["in"] == "header" and p["name"] == "X-Bus-Subject":
            p["schema"] = {"type": "string", "pattern": PINFL_PATTERN}
        if p["in"] == "header" and p["name"] == "X-Bus-User":  # names an official
            p["schema"]["not"] = {"pattern": PERSONAL_PATTERN}
        if path == "/v1/citizens/me/access-log" and p["name"] in _MEMBER_HEADERS:
            p["required"] = True
    if not op["parameters"]:
        del op["parameters"]
    responses: dict[str, Any] = op["responses"]
    responses.pop("422", None)  # FastAPI's HTTPValidationError: never sent
    for status in _statuses(method, path):
        responses[str(status)] = _problem(status)

    if method == "post" and path.startswith("/v1/services/"):
        route = node.router.route(path.removeprefix("/v1/services/"))
        envelope = responses["200"]["content"]["application/json"]["schema"]["$ref"]
        _as_seen(doc, envelope.rsplit("/", 1)[-1])
        responses["200"]["headers"] = {"X-Bus-Request-Number": {
            "description": "the request number the answer is recorded under", "required": True,
            "schema": {"type": "string", "pattern": _NUMBER_PATTERN}}}
        responses["202"] = _accepted("#/components/schemas/Accepted")
        if route.settings.async_only:
            for p in op["parameters"]:
                if p["in"] == "query" and p["name"] == "mode":
                    p["required"] = True
                    p["schema"] = {"type": "string", "enum": ["async"]}
                    p["description"] = "this service answers later: only async"
            responses.pop("200", None)
        _asking(node, route.service, op)
    elif path == "/v1/bundles" and method == "post":
        responses["202"] = _accepted("#/components/schemas/BundleAnswer")
        _asking(node, None, op)
    elif path == "/v1/messages/{message_id}":
        responses["200"] = {"description": "the provider's signed answer", "content": {
            "application/json": {"schema": {"type": "object"}}}}
        responses["202"] = {"description": "still pending", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Accepted"}}}}
    elif path == "/v1/documents/{number}":
        responses["200"] = {"description": "the document: HTML (default), or the signed answer "
                            "byte for byte with Accept: application/json", "content": {
                                "text/html": {"schema": {"type": "string"}},
                                "application/json": {"schema": {"type": "object"}}}}
    elif path == "/verify/{number}":
        responses["200"] = {"description": "what was issued and whether its signature stands: "
                            "HTML (default), or JSON with Accept: application/json", "content": {
                                "text/html": {"schema": {"type": "string"}},
                                "application/json": {"schema": {"type": "object"}}}}
        responses["404"]["content"]["text/html"] = {"schema": {"type": "string"}}
    elif path == "/v1/citizens/me/access-log":
        responses["200"]["description"] = ("the report as JSON, or with Accept: text/html a page "
                                           "in the language asked (?lang=, Accept-Language)")
        responses["200"]["content"]["text/html"] = {"schema": {"type": "string"}}
    elif path == "/health/ready":
        responses["503"] = {"description": "a readiness check fails (the body lists them)",
                            "content": {"application/json": {"schema": {"type": "object"}}}}
    elif path == "/metrics":
        responses["200"] = {"description": "Prometheus text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}}}


def _accepted(ref: str) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS[202],
        "headers": {"Location": {"description": "where to poll the result", "required": True,
                                 "schema": {"type": "string"}}},
        "content": {"application/json": {"schema": {"$ref": ref}}},
    }


_ACCEPTED = {
    "type": "object",
    "additionalProperties": False,
    "required": ["message_id", "state"],
    "properties": {
        "message_id": {"type": "string", "pattern": CORRELATION_PATTERN},
        "state": {"type": "string", "enum": ["pending"]},
        "location": {"type": "string"},
    },
}


def truthful_openapi(app: FastAPI, node: Node) -> Callable[[], dict[str, Any]]:
    """Install (and return) the builder of ``app``'s OpenAPI document; built once, kept."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, description=app.description,
                          routes=app.routes)
        components = doc.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schemas["Accepted"] = _ACCEPTED
        problem = schemas["Problem"] = Problem.model_json_schema()
        problem["properties"]["errors"] = {
            "anyOf": [{"type": "array", "maxItems": MAX_ERRORS,
                       "items": {"type": "object"}}, {"type": "null"}]}
        components["responses"] = {"MethodNotAllowed": _METHOD_NOT_ALLOWED}
        components["securitySchemes"] = {"bearer": {
            "type": "http", "scheme": "bearer", "description": "the member's API token"}}
        for path, operations in doc["paths"].items():
            for method, op in operations.items():
                _operation(doc, node, path, method, op)
        app.openapi_schema = doc
        return doc

    app.openapi = build  # type: ignore[method-assign]
    return build
