"""Slow and greedy clients: closed or refused, while normal requests keep flowing.

The demo node runs with short limits, set as an operator would (``BUS_HTTP__…``): the request
head must arrive within 1 s, the body within 1 s. Raw sockets play the slow client; httpx plays
everyone else, at the same time. Nothing here measures time: each test waits (bounded by a
socket timeout) for the server to close or answer, and checks what it did.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bus.config.http import HttpSettings
from bus.gateway.server import GuardedH11Protocol, server_options
from demo.data import AZIZ
from demo.scenario import RESIDENCE, DemoStack, start_stack

pytestmark = pytest.mark.slow
SAFETY_S = 20  # a socket read gives up after this: the server closes long before


def _stack(tmp: Path, **env: str) -> DemoStack:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(f"BUS_HTTP__{name}", value)
        return start_stack(tmp)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    stack = _stack(tmp_path_factory.mktemp("strict"), HEADER_TIMEOUT_S="1", BODY_TIMEOUT_S="1",
                   KEEP_ALIVE_S="1")
    try:
        yield stack
    finally:
        stack.stop()


def _connect(stack: DemoStack) -> socket.socket:
    host, port = stack.gateway.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=SAFETY_S)
    return sock


def _closed(sock: socket.socket) -> bool:
    """Wait until the server closes ``sock`` (True) or sends something (False)."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def _answer(sock: socket.socket) -> bytes:
    """One whole HTTP answer read from ``sock`` (head, and a body of its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _normal_request_works(stack: DemoStack) -> None:
    r = httpx.post(
        f"{stack.gateway.url}/v1/services/{RESIDENCE}", json={"pinfl": AZIZ.pinfl},
        headers={"Authorization": f"Bearer {stack.token}", "X-Bus-User": "officer-17",
                 "X-Bus-Purpose": "child-benefit"}, timeout=10)
    assert r.status_code == 200, r.text


def test_a_connection_that_sends_nothing_is_closed(strict: DemoStack) -> None:
    with _connect(strict) as sock:
        assert _closed(sock)


def test_headers_sent_slowly_are_cut_off_while_others_are_served(strict: DemoStack) -> None:
    head = (f"POST /v1/services/{RESIDENCE} HTTP/1.1\r\nHost: bus\r\n"
            "X-Bus-User: officer-17\r\nX-Bus-Purpose: child-benefit\r\n").encode()
    with _connect(strict) as sock:
        sock.settimeout(0.3)
        sent = 0
        closed = False
        for byte in head * 20:  # far more than the server lets through
            try:
                sock.sendall(bytes([byte]))
                sent += 1
                if sock.recv(65536) == b"":
                    closed = True
                    break
            except TimeoutError:  # nothing from the server yet: keep trickling
                if sent % 25 == 0:
                    _normal_request_works(strict)  # others are served meanwhile
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        assert closed, "the slow sender was never cut off"
        assert sent < len(head) * 20
    _normal_request_works(strict)


def test_a_body_sent_too_slowly_is_a_408_problem(strict: DemoStack) -> None:
    head = (f"POST /v1/services/{RESIDENCE} HTTP/1.1\r\nHost: bus\r\n"
            f"Authorization: Bearer {strict.token}\r\nX-Bus-User: officer-17\r\n"
            "X-Bus-Purpose: child-benefit\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n").encode()
    with _connect(strict) as sock:
        sock.sendall(head + b'{"pinfl": ')
        answer = _answer(sock)
        _normal_request_works(strict)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408"), answer
    assert b"application/problem+json" in rest and b"request-timeout" in rest


def test_an_idle_keep_alive_connection_is_closed(strict: DemoStack) -> None:
    with _connect(strict) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: bus\r\n\r\n")
        assert _answer(sock).startswith(b"HTTP/1.1 200")
        assert _closed(sock)


def test_a_head_still_incomplete_past_the_limit_is_refused(strict: DemoStack) -> None:
    with _connect(strict) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: bus\r\nX-Pad: " + b"a" * 40_000)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:100]


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    stack = _stack(tmp_path_factory.mktemp("capped"), MAX_CONNECTIONS="4")
    try:
        yield stack
    finally:
        stack.stop()


def test_connections_beyond_the_cap_get_503_at_once(capped: DemoStack) -> None:
    held = [_connect(capped) for _ in range(4)]
    try:
        for sock in held:
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: bus\r\n")  # head not finished
        r = httpx.get(f"{capped.gateway.url}/health/live", timeout=10)
        assert r.status_code == 503
    finally:
        for sock in held:
            sock.close()
    assert httpx.get(f"{capped.gateway.url}/health/live", timeout=10).status_code == 200


@pytest.mark.parametrize("field, value", [
    ("header_timeout_s", 0), ("body_timeout_s", -1), ("max_connections", 0),
    ("max_header_bytes", 10), ("keep_alive_s", 10_000),
])
def test_limits_out_of_range_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        HttpSettings.model_validate({field: value})


def test_the_server_is_given_every_limit() -> None:
    options = server_options(HttpSettings(header_timeout_s=3, keep_alive_s=2.5,
                                          max_connections=50, max_header_bytes=4096))
    assert issubclass(options["http"], GuardedH11Protocol)
    assert options["http"].header_timeout_s == 3
    assert (options["timeout_keep_alive"], options["limit_concurrency"],
            options["h11_max_incomplete_event_size"]) == (3, 50, 4096)
