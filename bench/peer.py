"""The peer cell: what a team would write instead of the bus, from well-known Python parts.

FastAPI in front of a plain aio-pika RPC, with the floors' envelopes and signing
(``bench.floor.Crypto``, ``bench.workload``):

* ``PeerRequester``, the API's side: ``POST /peer`` signs the request envelope as the portal and
  publishes it, persistent, to the durable quorum queue ``PEER_QUEUE`` on a channel with publisher
  confirms, with ``reply_to`` its exclusive reply queue and ``correlation_id`` the envelope's id;
  it waits for the answer with that correlation id, verifies that the provider signed it and
  returns it as received;
* ``PeerResponder``, the provider's side: consumes ``PEER_QUEUE`` (manual acks, a prefetch),
  verifies the request, signs the answer, publishes it (confirmed) to the reply queue and only
  then acks the request; a request that does not verify is rejected, not answered.

``peer_app`` runs both on the server's event loop, each with its own connection, as two services
of one team would each hold theirs; so the ``peer fastapi+aio-pika`` cell is one process, like
the ``bus rabbitmq`` cell's node (gateway and provider), and ``python -m bench.peer`` (``main``)
runs one as a process of its own: two of them are the peer of ``bus rabbitmq, 2 nodes``.
What the peer leaves out against the bus: configuration, access rights, schema validation, replay
memory, the audit log, documents, retries, metrics, logs. A timeout answers 504, an answer that
does not verify 502 (problem JSON, RFC 9457).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import uvicorn
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from fastapi import FastAPI, Request
from starlette.responses import Response

from bench.floor import Crypto
from bench.workload import PROVIDER, TIMEOUT_S, request_envelope
from bus.config.http import HttpSettings
from bus.gateway.server import server_options
from signing import SigningError

__all__ = ["PEER_QUEUE", "PeerRequester", "PeerResponder", "peer_app"]

PEER_QUEUE = "bench.peer.requests"
PREFETCH = 16  # requests a responder holds unacked: its answers' confirms overlap
_NOT_VERIFIED = (ValueError, KeyError, SigningError)  # Crypto.open on bad bytes or signatures


async def declare_peer_queue(channel: AbstractChannel) -> None:
    await channel.declare_queue(PEER_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})


class PeerResponder:
    """The provider's side: answer each request of ``PEER_QUEUE``, then ack it."""

    def __init__(self, crypto: Crypto) -> None:
        self._crypto = crypto
        self._channel: AbstractChannel | None = None
        self.rejected = 0  # requests that did not verify

    async def start(self, connection: AbstractConnection) -> None:
        channel = self._channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=PREFETCH)
        await declare_peer_queue(channel)
        queue = await channel.get_queue(PEER_QUEUE)
        await queue.consume(self._on_request)

    async def _on_request(self, message: AbstractIncomingMessage) -> None:
        assert self._channel is not None
        try:
            answer = self._crypto.answer(message.body)
        except _NOT_VERIFIED:
            self.rejected += 1
            await message.reject()  # not requeued: it would fail the same way again
            return
        if message.reply_to:
            await self._channel.default_exchange.publish(
                aio_pika.Message(
                    answer,
                    correlation_id=message.correlation_id,
                    content_type="application/json",
                ),
                routing_key=message.reply_to,
            )
        await message.ack()


class PeerRequester:
    """The API's side: one confirming channel, an exclusive reply queue, waiters by id."""

    def __init__(self, crypto: Crypto, timeout_s: float = TIMEOUT_S) -> None:
        self._crypto = crypto
        self._timeout_s = timeout_s
        self._waiting: dict[str, asyncio.Future[bytes]] = {}
        self._channel: AbstractChannel | None = None
        self._reply_queue = ""

    async def start(self, connection: AbstractConnection) -> None:
        channel = self._channel = await connection.channel(publisher_confirms=True)
        await declare_peer_queue(channel)
        replies = await channel.declare_queue(exclusive=True, auto_delete=True)
        self._reply_queue = replies.name
        await replies.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        waiter = self._waiting.get(message.correlation_id or "")
        if waiter is not None and not waiter.done():
            waiter.set_result(message.body)  # a late or unknown answer is dropped

    async def ask(self, body: dict[str, Any]) -> bytes:
        """Sign, publish (confirmed), wait for the answer, verify it; the answer's bytes.
        Raises ``TimeoutError`` without an answer in time, ``ValueError``/``SigningError``
        when the answer is not the provider's."""
        assert self._channel is not None, "start() first"
        envelope = request_envelope(body)
        message_id = envelope["id"]
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = waiter
        try:
            await self._channel.default_exchange.publish(
                aio_pika.Message(
                    self._crypto.sign(self._crypto.client, envelope),
                    message_id=message_id,
                    correlation_id=message_id,
                    reply_to=self._reply_queue,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    content_type="application/json",
                ),
                routing_key=PEER_QUEUE,
            )
            answer = await asyncio.wait_for(waiter, self._timeout_s)
        finally:
            self._waiting.pop(message_id, None)
        self._crypto.open(answer, PROVIDER)
        return answer

    async def remove_queue(self) -> None:
        """Delete ``PEER_QUEUE`` (durable: left behind it would outlive the run)."""
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.queue_delete(PEER_QUEUE)


def _problem(status: int, title: str, detail: str) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Response(orjson.dumps(body), status_code=status, media_type="application/problem+json")


def peer_app(
    crypto: Crypto,
    amqp_url: str,
    *,
    responder: PeerResponder | None = None,
    timeout_s: float = TIMEOUT_S,
) -> FastAPI:
    """``POST /peer`` asking over aio-pika, answered by ``responder`` (a new one if None) on
    the same event loop; ``PEER_QUEUE`` is deleted when the app stops."""
    requester = PeerRequester(crypto, timeout_s)
    provider = responder or PeerResponder(crypto)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            api = await aio_pika.connect_robust(amqp_url)
            stack.push_async_callback(api.close)
            await requester.start(api)
            stack.push_async_callback(requester.remove_queue)  # after the responder stopped
            worker = await aio_pika.connect_robust(amqp_url)
            stack.push_async_callback(worker.close)
            await provider.start(worker)
            yield

    app = FastAPI(title="bench peer: FastAPI + aio-pika RPC", lifespan=lifespan)

    @app.get("/health/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}  # served only once the lifespan has connected

    @app.post("/peer")
    async def peer(request: Request) -> Response:
        body = orjson.loads(await request.body())
        try:
            answer = await requester.ask(body)
        except TimeoutError:
            return _problem(504, "Gateway Timeout", f"no answer in {timeout_s:g} s")
        except _NOT_VERIFIED:
            return _problem(502, "Bad Gateway", "the answer is not signed by the provider")
        return Response(answer, media_type="application/json")

    return app


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.peer --keys DIR --listen HOST:PORT``: the peer app as a process of its
    own, on the server stack of ``run_bus.py serve``; the broker's URL comes from the variable
    ``BENCH_PEER_AMQP_URL`` (it carries a password: never on the command line)."""
    parser = argparse.ArgumentParser(prog="python -m bench.peer", description=main.__doc__)
    parser.add_argument("--keys", type=Path, required=True, help="the bench's keys folder")
    parser.add_argument("--listen", default="127.0.0.1:8000", help="HOST:PORT")
    args = parser.parse_args(argv)
    url = os.environ.get("BENCH_PEER_AMQP_URL")
    if not url:
        parser.error("set BENCH_PEER_AMQP_URL to the broker's amqp:// URL")
    host, port = args.listen.rsplit(":", 1)
    app = peer_app(Crypto.load(args.keys), url)
    uvicorn.run(app, host=host, port=int(port), log_config=None, access_log=False,
                **server_options(HttpSettings()))


if __name__ == "__main__":
    main()
