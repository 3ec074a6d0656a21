"""``Idempotency-Key`` on the asking routes: a client's retry gets the first answer, never a
second execution.

A client may send ``Idempotency-Key: <1 to 255 visible ASCII characters>`` with
``POST /v1/services/{service}`` (synchronous or ``?mode=async``) and ``POST /v1/bundles``. The
first request with a key is executed and its answer — status, headers, body — kept in the node
state (``bus.state``, key ``idempotency/<member>/<key>``) for ``WINDOW_S``; every later request
of the same member with the same key within that time gets that answer again, byte for byte,
with ``Idempotent-Replayed: true`` added, and nothing is sent to any agency. With a shared
PostgreSQL state this holds whichever node the retry reaches.

* The key names one request: the same key with another route, body or asking headers
  (``X-Bus-Purpose``, ``X-Bus-User``, ``X-Bus-Correlation``, ``X-Bus-Callback``) is refused
  with 422 ``idempotency-key-reused``.
* While the first request is still being answered, the same key is refused with 409
  ``idempotency-key-in-use`` and ``Retry-After: 1``. If the node answering it dies, its lease
  runs out (the longest the route may take) and the next request with the key executes.
* An answer refused before anything was sent (a malformed or unauthorised request, a rate
  limit: status 4xx without a message id) is not kept: the client may correct it and use the
  key again. Everything else is kept, a 504 included, since the agency may have acted on it.
* A key with an unknown token is ignored (the route refuses the request anyway).

It is an ASGI middleware in front of the routes (inside the body limit), so the routes do not
change: it reads the bounded body, asks the state, and either answers from it or lets the
route run and keeps what it answered. Keys are per member (the API token's member): another
member's key never reaches this member's answers.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus.config.settings import SYNC_TIMEOUT_MAX_S, BusSettings
from bus.core.errors import (
    BusError,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    MalformedRequest,
)
from bus.gateway.problems import problem_response
from bus.state import NodeState

__all__ = ["HEADER", "KEY_PATTERN", "WINDOW_S", "Idempotency"]

HEADER = "idempotency-key"
_HEADER = HEADER.encode()
WINDOW_S = 24 * 3600.0  # how long a key's answer is kept and given again
KEY_PATTERN = r"^[!-~]{1,255}$"  # 1 to 255 visible ASCII characters
_KEY = re.compile(KEY_PATTERN)
_ASKED = (b"x-bus-purpose", b"x-bus-user", b"x-bus-correlation", b"x-bus-callback")
_NOT_KEPT = (b"content-length", b"date", b"server")
_LEASE_MARGIN_S = 5.0


class Idempotency:
    """See the module docstring. ``paths`` maps each asking path to the seconds its answer may
    take (the lease of a first request)."""

    def __init__(
        self, app: ASGIApp, *, state: NodeState, settings: BusSettings, paths: dict[str, float]
    ) -> None:
        self.app = app
        self.state = state
        self.paths = paths
        self.members = {
            bytes.fromhex(m.api_token_sha256): code
            for code, m in settings.members.items()
            if m.api_token_sha256
        }

    @staticmethod
    def lease_for(timeout_s: float) -> float:
        """The lease of a first request on a route answered within ``timeout_s``."""
        return min(timeout_s, SYNC_TIMEOUT_MAX_S) + _LEASE_MARGIN_S

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        lease_s = self.paths.get(scope["path"])
        headers: dict[bytes, bytes] = dict(scope.get("headers") or [])
        key = headers.get(_HEADER)
        # the token is hashed only for a request that carries a key
        member = self._member(headers) if lease_s is not None and key is not None else None
        if lease_s is None or key is None or member is None:
            await self.app(scope, receive, send)
            return
        scope["bus.client"] = member  # for Observe, also when answered from the state
        text = key.decode("latin-1")
        if not _KEY.match(text):
            error = MalformedRequest("Idempotency-Key must be 1 to 255 visible ASCII characters")
            await self._refuse(error, scope, receive, send)
            return
        body = await _read(receive)
        if body is None:  # the client went away
            return
        fingerprint = _fingerprint(scope, headers, body)
        name, owner = f"idempotency/{member}/{text}", uuid.uuid4().hex
        try:
            claim = await run_in_threadpool(
                self.state.claim, name, owner, lease_s=lease_s,
                expires_at=self.state.clock() + WINDOW_S, fingerprint=fingerprint,
            )  # fmt: skip
        except BusError as away:  # the state away: say so rather than risk a second execution
            await self._refuse(away, scope, receive, send)
            return
        if claim.state == "answered":
            assert claim.result is not None
            scope["bus.outcome"] = "idempotent-replay"
            await _send_kept(claim.result, send)
            return
        if claim.state == "busy":
            in_use = IdempotencyKeyInUse(f"the request with Idempotency-Key {text!r} is still "
                                        "being answered; ask again shortly")
            await self._refuse(in_use, scope, receive, send, {"Retry-After": "1"})
            return
        if claim.state == "conflict":
            reused = IdempotencyKeyReused(f"Idempotency-Key {text!r} was used for another request "
                                         "(route, body or X-Bus headers differ)")
            await self._refuse(reused, scope, receive, send)
            return
        await self._first(scope, body, receive, send, name, owner)

    def _member(self, headers: dict[bytes, bytes]) -> str | None:
        auth = headers.get(b"authorization", b"")
        if not auth.startswith(b"Bearer "):
            return None
        return self.members.get(hashlib.sha256(auth.removeprefix(b"Bearer ").strip()).digest())

    async def _first(self, scope: Scope, body: bytes, receive: Receive, send: Send,
                     name: str, owner: str) -> None:
        """Run the route and keep what it answered (or give the key up)."""
        given = False

        async def replay() -> Message:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        start: Message | None = None
        chunks: list[bytes] = []
        kept = False

        async def keep(message: Message) -> None:
            nonlocal start, kept
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                last = not message.get("more_body", False)
                if last and start is not None and _worth_keeping(scope, start["status"]):
                    # kept before the client has the answer: a retry it sends at once finds it
                    result = _frame(start, b"".join(chunks))
                    kept = await run_in_threadpool(self.state.settle, name, owner, result)
            await send(message)

        try:
            await self.app(scope, replay, keep)
        finally:
            if not kept:
                await run_in_threadpool(self.state.release, name, owner)

    async def _refuse(self, error: BusError, scope: Scope, receive: Receive, send: Send,
                      headers: dict[str, str] | None = None) -> None:
        scope["bus.outcome"] = error.code
        response = problem_response(error, instance=scope.get("path"), headers=headers)
        await response(scope, receive, send)


def _worth_keeping(scope: Scope, status: int) -> bool:
    """Kept unless refused before anything was sent (see the module docstring): a request the
    ask pipeline sent has a message id in its context (``bus.ask``), or in the error."""
    if status < 400 or status >= 500 or scope.get("bus.message_id") is not None:
        return True
    context = scope.get("bus.ask")  # bus.exchange.asking.AskContext
    return getattr(context, "sent", False) or getattr(context, "message_id", None) is not None


async def _read(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _fingerprint(scope: Scope, headers: dict[bytes, bytes], body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["path"].encode(), scope.get("query_string", b""),
                 *(headers.get(h, b"") for h in _ASKED)):
        digest.update(len(part).to_bytes(4, "big") + part)
    digest.update(body)
    return digest.hexdigest()


def _frame(start: Message, body: bytes) -> bytes:
    """An answer as kept: a JSON line of status and headers, then the body."""
    headers = [
        [k.decode("latin-1"), v.decode("latin-1")]
        for k, v in start.get("headers", [])
        if k.lower() not in _NOT_KEPT
    ]
    return orjson.dumps({"status": start["status"], "headers": headers}) + b"\n" + body


async def _send_kept(result: bytes, send: Send) -> None:
    head, _, body = result.partition(b"\n")
    meta: dict[str, Any] = orjson.loads(head)
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in meta["headers"]]
    headers += [(b"content-length", str(len(body)).encode()), (b"idempotent-replayed", b"true")]
    await send({"type": "http.response.start", "status": meta["status"], "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
