"""The "Method" section of bench/RESULTS.md: what each cell of the table measures and how."""

from __future__ import annotations

from bench.machine import nproc, server_stack

__all__ = ["method_text"]


def method_text(mode: str, warmup: int, per_cell: int, max_seconds: float) -> str:
    """The "Method" section of bench/RESULTS.md for a run with these options."""
    client = (
        "threads, one `httpx.Client` per thread"
        if mode == "threads"
        else "asyncio tasks sharing one `httpx.AsyncClient`"
    )
    return f"""\
One exchange = the portal asks `echo-agency/echo/v1` (a `ResidenceRegistrationRequest`) and gets
the signed `ResidenceRegistration` envelope back; the provider is the trivial in-process adapter
`bench-echo` (`bench/trivial_adapter.py`). Every floor does the same signing work in plain code
(sign the request as the portal with Ed25519 over RFC 8785 JSON, verify it, sign the answer as
the provider, verify it) on envelopes of the bus's shape and size; see `bench/floor.py`.

* **floor http**: httpx → FastAPI/uvicorn handler doing the four signature steps; the baseline
  of **bus embedded** (one node, gateway + provider in this process, SQLite queues) and of
  **bus embedded, workers** (`run_bus.py serve --workers {nproc()}`: the node as one process per
  core on one socket).
* **floor pika**: plain pika in one process: client threads with a connection, an exclusive
  reply queue and publisher confirms each, publishing persistent requests to a durable quorum
  queue; 8 responder threads (as many as the node's workers) verify, sign, publish the answer
  (confirmed) and then ack. The baseline of **bus rabbitmq** (one node in this process) and of
  **bus rabbitmq, 2 nodes** (two `run_bus.py serve --workers 1` processes consuming the same
  queues, clients spread over both gateways).
* **floor http+pika**: the http floor whose handler asks over plain pika (one connection per
  server thread): the same shape as the bus on RabbitMQ without the bus; for comparison.
* **peer fastapi+aio-pika**: what a team would write instead with well-known parts
  (`bench/peer.py`): a FastAPI handler that signs the request and asks over a plain aio-pika RPC
  (persistent requests to a durable quorum queue, publisher confirms, an exclusive reply queue,
  correlation ids), answered by an aio-pika consumer on the same event loop (its own connection)
  that verifies, signs, publishes the answer (confirmed) and then acks; the handler verifies the
  answer. One process, like **bus rabbitmq**, whose `bus/peer` compares with it; **peer
  fastapi+aio-pika, 2 processes** is two of them (`python -m bench.peer`) sharing the request
  queue, clients spread over both: the peer of **bus rabbitmq, 2 nodes**.
* **bus bundle of 5**: one `POST /v1/bundles` asking five services of the echo agency that
  answer in 10, 20, 30, 40 and 50 ms (one node in this process): a bundle should take its
  slowest part (50 ms) plus little.
* **bus async acceptance**: `?mode=async` requests to `run_bus.py serve --workers {nproc()}`:
  each `202 Accepted` is recorded (SQLite) and published before it is sent; the answers are
  made and stored meanwhile by the same node.
* **demo REST+SQL**: the demo's real path (`demo.scenario.start_stack`: the REST residence
  registry and the SQL cadastre), one client, both services in turn.

Each cell: {warmup} untimed exchanges per client, then {per_cell} timed exchanges
shared by all clients (or {max_seconds:g} s, whichever ends first); throughput is
successful exchanges per second of wall time, latencies are per exchange as the client saw it
(nearest-rank p50/p99). Nodes log every exchange as JSON lines to a file, as a deployed node does.
The RabbitMQ cells run in a virtual host of the run's own (`bench/vhost.py`), deleted at the end:
the broker is shared with other work, whose queues and clean-ups stay apart from the run's.

Servers run in the benchmark process under uvicorn as `run_bus.py serve` runs them, floors
included, on one stack: {server_stack()}. The HTTP load comes from
a separate load-generator process ({client}; 32 threads in it cost no more CPU per exchange
than 4 processes of 8 threads). Threads loaded the servers best here: asyncio tasks on one
`httpx.AsyncClient` reached about half the floor's throughput at 8 clients and less at 32.
So on this machine **the load generator, the servers and RabbitMQ all compete for the same
{nproc()} cores**: every figure is a whole-machine figure, the clients' own CPU (about 0.5-1 ms
per exchange for httpx) is part of it, and so is whatever else runs on the machine (the
`cores ours/all` column). The pika floor's clients run in the benchmark process itself."""
