"""The raw floors: the same exchange and the same signing work in plain code, without the bus.

Every floor signs the request envelope as the portal (Ed25519 over RFC 8785 canonical JSON,
detached JWS, ``signing``), verifies it on the provider's side, signs the answer as the provider
and verifies it on the client's side: the four signature operations a bus exchange makes, on
envelopes of the bus's shape and size (``bench.workload``). What they leave out is the bus:
configuration, access rights, schema validation, the transport's bookkeeping, retries, logs.

* ``pika``: plain pika, one process. Each client thread has its own ``BlockingConnection``, an
  exclusive reply queue and publisher confirms; it publishes the signed request (persistent) to
  one durable quorum queue and waits for the answer. ``RESPONDERS`` responder threads, each on
  its own connection, verify, sign the answer, publish it (confirmed) to the reply queue and only
  then ack the request: the bus's delivery guarantees, the textbook RPC pattern.
* ``http``: an ``httpx`` client (the load generator process) → FastAPI/uvicorn handler that does
  the four signature operations in the handler (and the JSON round trips between them): the
  same-process floor of the bus on the embedded transport.
* ``http+pika``: the handler does the ``pika`` floor's client side (one connection per worker
  thread of the server's thread pool): the same-shape floor of the bus on RabbitMQ.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pika
import pika.exceptions
import pika.spec
from fastapi import FastAPI, Request
from pika.adapters.blocking_connection import BlockingChannel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from bench.workload import CLIENT, PROVIDER, reply_envelope, request_body, request_envelope
from signing import JwsSigner, JwsVerifier, StaticTrustStore, canonical_json, load_private_key

__all__ = [
    "FLOOR_QUEUE",
    "RESPONDERS",
    "Crypto",
    "PikaRequester",
    "PikaResponders",
    "http_floor_app",
]

FLOOR_QUEUE = "bench.floor.requests"
RESPONDERS = 8  # as many as the node's provider workers (node.workers)
_RESPONDER_PREFETCH = 4


@dataclass(frozen=True)
class Crypto:
    """Keys loaded once into ``cryptography`` objects, as the bus loads them."""

    client: JwsSigner
    provider: JwsSigner
    verifier: JwsVerifier

    @classmethod
    def load(cls, keys_dir: Path) -> Crypto:
        trust = StaticTrustStore.from_files({m: keys_dir / f"{m}.pub" for m in (CLIENT, PROVIDER)})
        return cls(
            JwsSigner(CLIENT, load_private_key(keys_dir / f"{CLIENT}.key")),
            JwsSigner(PROVIDER, load_private_key(keys_dir / f"{PROVIDER}.key")),
            JwsVerifier(trust),
        )

    def sign(self, signer: JwsSigner, envelope: dict[str, Any]) -> bytes:
        """The envelope with its detached JWS, as JSON bytes ready for the wire."""
        signature = signer.sign(canonical_json(envelope))
        return orjson.dumps({**envelope, "signature": signature})

    def open(self, wire: bytes, member: str) -> dict[str, Any]:
        """Parse an envelope from the wire and verify that ``member`` signed it."""
        envelope: dict[str, Any] = orjson.loads(wire)
        signature = envelope.pop("signature")
        trusted = self.verifier.verify(canonical_json(envelope), signature)
        if trusted.member != member:
            raise ValueError(f"signed by {trusted.member}, expected {member}")
        return envelope

    def answer(self, request_wire: bytes) -> bytes:
        """The provider's side: verify the request, sign the answer."""
        request = self.open(request_wire, CLIENT)
        return self.sign(self.provider, reply_envelope(request))


def _connect(url: str) -> pika.BlockingConnection:
    params = pika.URLParameters(url)
    params.heartbeat = 600  # idle threads of a pool do not pump heartbeats
    return pika.BlockingConnection(params)


def declare_floor_queue(channel: BlockingChannel) -> None:
    channel.queue_declare(FLOOR_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})


class PikaResponders:
    """``count`` responder threads on ``FLOOR_QUEUE``, each with its own connection."""

    def __init__(self, url: str, crypto: Crypto, count: int = RESPONDERS) -> None:
        self._url = url
        self._crypto = crypto
        self._consumers: list[tuple[pika.BlockingConnection, BlockingChannel]] = []
        self._lock = threading.Lock()
        ready = threading.Barrier(count + 1, timeout=30)
        self._threads = [
            threading.Thread(target=self._run, args=(ready,), name=f"floor-responder-{i}")
            for i in range(count)
        ]
        for t in self._threads:
            t.daemon = True
            t.start()
        ready.wait()

    def _run(self, ready: threading.Barrier) -> None:
        connection = _connect(self._url)
        channel = connection.channel()
        with self._lock:
            self._consumers.append((connection, channel))
        declare_floor_queue(channel)
        channel.confirm_delivery()
        channel.basic_qos(prefetch_count=_RESPONDER_PREFETCH)

        def on_request(
            ch: BlockingChannel,
            method: pika.spec.Basic.Deliver,
            props: pika.BasicProperties,
            body: bytes,
        ) -> None:
            answer = self._crypto.answer(body)
            ch.basic_publish(
                "",
                props.reply_to,
                answer,
                pika.BasicProperties(
                    correlation_id=props.message_id, content_type="application/json"
                ),
            )
            ch.basic_ack(method.delivery_tag)

        channel.basic_consume(FLOOR_QUEUE, on_request)
        ready.wait()
        try:
            channel.start_consuming()
        except pika.exceptions.AMQPError:
            return  # the broker went away: the cell's clients report it
        finally:
            with contextlib.suppress(pika.exceptions.AMQPError):
                connection.close()

    def stop(self) -> None:
        """Stop consuming (unacked requests go back to the queue) and close the connections."""
        with self._lock:
            consumers = list(self._consumers)
        for connection, channel in consumers:
            with contextlib.suppress(pika.exceptions.AMQPError):  # already closed
                connection.add_callback_threadsafe(channel.stop_consuming)
        for t in self._threads:
            t.join(10)


class PikaRequester:
    """The client side of the pika floor: one connection, one exclusive reply queue."""

    def __init__(self, url: str, crypto: Crypto) -> None:
        self._crypto = crypto
        self._body = request_body()
        self._connection = _connect(url)
        self._channel = self._connection.channel()
        self._channel.confirm_delivery()
        declared = self._channel.queue_declare("", exclusive=True, auto_delete=True)
        self._reply_queue = declared.method.queue
        self._replies = self._channel.consume(
            self._reply_queue, auto_ack=True, inactivity_timeout=30
        )

    def ask(self, body: dict[str, Any] | None = None) -> bytes:
        """Sign, publish (confirmed), wait for the answer, verify it; return the answer."""
        envelope = request_envelope(body or self._body)
        self._channel.basic_publish(
            "",
            FLOOR_QUEUE,
            self._crypto.sign(self._crypto.client, envelope),
            pika.BasicProperties(
                message_id=envelope["id"],
                reply_to=self._reply_queue,
                delivery_mode=pika.DeliveryMode.Persistent,
                content_type="application/json",
            ),
        )
        while True:
            method, props, answer = next(self._replies)
            if method is None:
                raise TimeoutError("no answer from the pika floor's responders in 30 s")
            if props.correlation_id == envelope["id"]:
                self._crypto.open(answer, PROVIDER)
                return answer

    def __call__(self, n: int) -> bool:
        self.ask()
        return True

    def close(self) -> None:
        with contextlib.suppress(pika.exceptions.AMQPError):
            self._channel.cancel()
            self._connection.close()

    def __enter__(self) -> PikaRequester:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def http_floor_app(crypto: Crypto, *, amqp_url: str | None = None) -> FastAPI:
    """``POST /floor``: the ``http`` floor, or with ``amqp_url`` the ``http+pika`` floor."""
    local = threading.local()
    requesters: list[PikaRequester] = []
    lock = threading.Lock()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        with lock:
            for requester in requesters:
                requester.close()
            requesters.clear()

    app = FastAPI(title="bench floor", lifespan=lifespan)

    def over_pika(body: dict[str, Any]) -> bytes:
        requester: PikaRequester | None = getattr(local, "requester", None)
        if requester is None:
            assert amqp_url is not None
            requester = local.requester = PikaRequester(amqp_url, crypto)
            with lock:
                requesters.append(requester)
        return requester.ask(body)

    def in_process(body: dict[str, Any]) -> bytes:
        request_wire = crypto.sign(crypto.client, request_envelope(body))
        answer_wire = crypto.answer(request_wire)
        crypto.open(answer_wire, PROVIDER)
        return answer_wire

    @app.post("/floor")
    async def floor(request: Request) -> Response:
        body = orjson.loads(await request.body())
        if amqp_url is None:
            answer = in_process(body)
        else:
            answer = await run_in_threadpool(over_pika, body)
        return Response(answer, media_type="application/json")

    return app


@contextmanager
def pika_floor(url: str, crypto: Crypto) -> Iterator[PikaResponders]:
    """Responders running on ``FLOOR_QUEUE`` (declared and purged first, deleted after)."""
    connection = _connect(url)
    try:
        channel = connection.channel()
        declare_floor_queue(channel)
        channel.queue_purge(FLOOR_QUEUE)
    finally:
        with contextlib.suppress(pika.exceptions.AMQPError):
            connection.close()
    responders = PikaResponders(url, crypto)
    try:
        yield responders
    finally:
        responders.stop()
        with contextlib.suppress(pika.exceptions.AMQPError, OSError):  # the broker may be gone
            connection = _connect(url)
            try:
                connection.channel().queue_delete(FLOOR_QUEUE)
            finally:
                connection.close()
