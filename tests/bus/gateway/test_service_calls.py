"""The service calls' fast path (``bus.gateway.service_calls``) answers as the FastAPI route.

Two apps on the demo's node: the gateway as built (``ServiceCalls`` in front of the routes) and
the same gateway without it (every call through FastAPI's route). Each call below goes to both;
status, media type, the headers sent and the body must agree (ids, times and signatures aside),
and the well-formed ones must have been taken by the fast path, the others handed to the route.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from bus.gateway.app import create_app
from bus.gateway.service_calls import ServiceCalls
from demo.data import AZIZ
from demo.scenario import RESIDENCE, DemoStack
from demo.servers import serve_in_thread

URL = f"/v1/services/{RESIDENCE}"
BODY = orjson.dumps({"pinfl": AZIZ.pinfl})
_VARYING = {"id", "correlation", "issued_at", "expires_at", "signature", "message_id", "location"}
_NOT_COMPARED = {"date", "server", "content-length", "x-bus-message-id", "x-bus-request-number",
                 "location"}


Clients = tuple[httpx.Client, httpx.Client]


@pytest.fixture(scope="module")
def clients(demo_stack: DemoStack) -> Iterator[Clients]:
    fast = create_app(demo_stack.node, manage_node=False)
    plain = create_app(demo_stack.node, manage_node=False)
    plain.user_middleware = [m for m in plain.user_middleware if m.cls is not ServiceCalls]
    servers = [serve_in_thread(app) for app in (fast, plain)]
    try:
        with httpx.Client(base_url=servers[0].url, timeout=10) as f, \
                httpx.Client(base_url=servers[1].url, timeout=10) as p:
            yield f, p
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each call the fast path saw passed its checks (True) or went to the route."""
    seen: list[bool] = []
    checked = ServiceCalls._checked

    def spy(self: ServiceCalls, *args: Any) -> Any:
        call = checked(self, *args)
        seen.append(call is not None)
        return call

    monkeypatch.setattr(ServiceCalls, "_checked", spy)
    return seen


def _headers(token: str, **change: str | None) -> list[tuple[str, str]]:
    headers = {"Authorization": f"Bearer {token}", "X-Bus-Purpose": "child-benefit",
               "X-Bus-User": "officer-17", "Content-Type": "application/json"}
    for name, value in change.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return list(headers.items())


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in _VARYING}
    return value


def _both(clients: Clients, url: str, headers: list[tuple[str, str]],
          body: bytes) -> tuple[int, Any]:
    answers = [c.post(url, headers=headers, content=body) for c in clients]
    fast, plain = answers
    assert fast.status_code == plain.status_code, (fast.text, plain.text)
    names = [{k for k in a.headers if k not in _NOT_COMPARED} for a in answers]
    assert names[0] == names[1]
    for name in names[0]:
        assert fast.headers[name] == plain.headers[name], name
    assert ("x-bus-message-id" in fast.headers) == ("x-bus-message-id" in plain.headers)
    assert ("x-bus-request-number" in fast.headers) == ("x-bus-request-number" in plain.headers)
    bodies = [_comparable(orjson.loads(a.content)) for a in answers]
    assert bodies[0] == bodies[1]
    return fast.status_code, bodies[0]


@pytest.mark.parametrize(
    ("query", "change", "status"),
    [
        ("", {}, 200),
        ("?mode=sync", {"X_Bus_Correlation": "3f2b8c1e-4d5a-4b6c-9d7e-0a1b2c3d4e5f"}, 200),
        ("", {"Content_Type": "application/json; charset=utf-8"}, 200),
        ("?mode=async", {}, 202),
        ("", {"X_Bus_Purpose": "housing-subsidy"}, 403),  # refused by the ask pipeline
    ],
)
def test_well_formed_calls_take_the_fast_path(
    clients: Clients, demo_stack: DemoStack, taken: list[bool],
    query: str, change: dict[str, str], status: int,
) -> None:
    got, body = _both(clients, URL + query, _headers(demo_stack.token, **change), BODY)
    assert got == status, body
    assert taken == [True]
    if status == 200:
        assert body["payload"]["pinfl"] == AZIZ.pinfl


@pytest.mark.parametrize(
    ("query", "change", "body", "status"),
    [
        ("", {"Authorization": "Bearer nope"}, BODY, 401),
        ("", {"Authorization": None}, BODY, 401),
        ("", {"X_Bus_Purpose": None}, BODY, 400),
        ("", {"X_Bus_Purpose": "Child Benefit"}, BODY, 400),
        ("", {"X_Bus_User": "o" * 201}, BODY, 400),
        ("", {"X_Bus_Correlation": "not-a-uuid"}, BODY, 400),
        ("?mode=later", {}, BODY, 422),
        ("?mode=sync&mode=async", {}, BODY, 202),
        ("", {"Content_Type": "text/plain"}, BODY, 415),
        ("", {"Content_Type": None}, BODY, 415),
        ("", {"Content_Type": "application/vnd.bus+json"}, BODY, 200),
        ("", {}, b"", 400),
        ("", {}, b'{"pinfl": "3150', 400),
        ("", {}, b'{"pinfl": NaN}', 400),
        ("", {}, b'{"pinfl": "31505862740013", "pinfl": "42203902740025"}', 400),
        ("", {}, b'{"pinfl": "123"}', 422),
        ("", {}, b"[]", 422),
        ("", {}, b"\xff\xfe", 400),
    ],
)
def test_every_other_call_goes_to_the_route(
    clients: Clients, demo_stack: DemoStack, taken: list[bool],
    query: str, change: dict[str, str | None], body: bytes, status: int,
) -> None:
    got, answer = _both(clients, URL + query, _headers(demo_stack.token, **change), body)
    assert got == status, answer
    assert taken == [False]


def test_a_header_sent_twice_goes_to_the_route(
    clients: Clients, demo_stack: DemoStack, taken: list[bool]
) -> None:
    headers = [*_headers(demo_stack.token), ("X-Bus-Purpose", "housing-subsidy")]
    _both(clients, URL, headers, BODY)
    assert taken == [False]
