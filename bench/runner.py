"""One benchmark run: the floors, the bus on both transports, the demo's path; then the report.

``run_bench(options, console)`` measures, in this order (each system started once, then loaded
with 1, 8 and 32 concurrent clients), and returns the results:

=========================  ==========  ======================================================
system                     transport   what
=========================  ==========  ======================================================
floor http                 -           httpx → FastAPI handler doing the four signature steps
bus embedded               embedded    the bus, one node, trivial provider (vs floor http)
bus embedded, workers      embedded    ``run_bus.py serve --workers <cores>`` (vs floor http)
floor pika                 rabbitmq    plain pika request/reply with the same signing work
floor http+pika            rabbitmq    floor http whose handler asks over plain pika
peer fastapi+aio-pika      rabbitmq    FastAPI + a plain aio-pika RPC, same signing (bench.peer)
peer …, 2 processes        rabbitmq    two ``python -m bench.peer`` sharing the request queue
bus rabbitmq               rabbitmq    the bus, one node in this process (vs floor pika, peer)
bus rabbitmq, 2 nodes      rabbitmq    two ``run_bus.py serve --workers 1`` (vs the 2-process peer)
bus bundle of 5            embedded    ``POST /v1/bundles``: 5 echo services answering in 10-50 ms
bus async acceptance       embedded    ``?mode=async`` on ``serve --workers <cores>``: 202s/s
demo REST+SQL              embedded    the demo's real agencies, sequential, 1 client
=========================  ==========  ======================================================

Servers under test run in this process (uvicorn in a thread, on the HTTP parser and loop
``serve`` uses: the gateway's h11 protocol and uvloop with the ``fast`` extra), the
HTTP load comes from load-generator processes (``bench.loadgen``).
Before each cell the clients are primed (one untimed exchange each), then the cell is metered:
CPU time per role from ``/proc`` (``bench.cpu``).
RabbitMQ rows are left out, with the reason in the report, when the broker cannot be reached
or ``bus.transport.rabbitmq.transport`` cannot be imported.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from rich.console import Console

from bench.bus_run import (
    BUNDLE_SERVICES,
    BenchDeployment,
    async_calls,
    bundle_calls,
    bus_calls,
    demo_calls,
    demo_stack,
    in_process_node,
    queues_removed,
    serve_nodes,
)
from bench.cpu import CpuMeter, broker_pid
from bench.floor import Crypto, PikaRequester, http_floor_app, pika_floor
from bench.loadgen import HttpCall, HttpJob, LoadGenerator, Mode, Sample, run_threads
from bench.machine import (
    code_state,
    cpu_model,
    nproc,
    rabbit_problem,
    versions,
    wait_for_broker,
)
from bench.method import method_text
from bench.peer import peer_app
from bench.processes import Launch, served
from bench.report import (
    Cell,
    Machine,
    Result,
    check_targets,
    print_result,
    results_table,
    summarise,
    write_results,
)
from bench.vhost import run_vhost
from bench.workload import request_body
from bus.config.http import HttpSettings
from bus.gateway.server import server_options
from demo.servers import serve_in_thread

__all__ = ["DEFAULT_AMQP_URL", "SYSTEMS", "BenchOptions", "run_bench"]

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
PEER = "peer fastapi+aio-pika"  # what a team would write instead (bench.peer)
PEER_TWO = f"{PEER}, 2 processes"  # the same, twice, as the two nodes
RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass(frozen=True)
class BenchOptions:
    requests: int | None = None  # per cell; default 2000 (300 with quick)
    quick: bool = False
    concurrency: tuple[int, ...] = (1, 8, 32)
    only: tuple[str, ...] = ()
    mode: Mode = "threads"
    amqp_url: str = DEFAULT_AMQP_URL
    write: bool = True
    results_path: Path = RESULTS_PATH
    state_dir: Path | None = None
    command: str = "python -m bench"

    @property
    def per_cell(self) -> int:
        return self.requests or (300 if self.quick else 2000)

    @property
    def max_seconds(self) -> float:
        """A cell stops early after this long, so a slow system cannot stretch the run."""
        return 1.5 if self.quick else 8.0

    @property
    def warmup(self) -> int:
        """Untimed exchanges per client before a cell's clock starts."""
        return 3 if self.quick else 10


@dataclass
class _Context:
    options: BenchOptions
    console: Console
    loadgen: LoadGenerator
    deployment: BenchDeployment
    crypto: Crypto
    notes: list[str] = field(default_factory=list)

    def http(
        self,
        bases: list[str],
        calls: list[HttpCall],
        concurrency: int,
        *,
        prime: bool = False,
        expect: tuple[int, ...] = (200,),
    ) -> Sample:
        """One cell of HTTP load; ``prime``: one untimed exchange per client and nothing else
        (the load generator's processes pay their first-use costs outside the cell)."""
        o = self.options
        return self.loadgen.run(
            HttpJob(
                bases=bases,
                calls=calls,
                concurrency=concurrency,
                requests=0 if prime else o.per_cell,
                warmup=1 if prime else o.warmup,
                max_seconds=o.max_seconds,
                mode=o.mode,
                expect=list(expect),
            )
        )

    def http_target(
        self,
        bases: list[str],
        calls: list[HttpCall],
        server: list[int],
        *,
        expect: tuple[int, ...] = (200,),
    ) -> Target:
        return Target(
            lambda c: self.http(bases, calls, c, expect=expect),
            server,
            prime=lambda c: self.http(bases, calls, c, prime=True, expect=expect),
        )


Runner = Callable[[int], Sample]


@dataclass(frozen=True)
class Target:
    """A started system: ``run(c)`` measures one cell; the pids say whose CPU is whose."""

    run: Runner
    server: list[int]
    http: bool = True  # clients from the load generator (else they run in ``server``)
    prime: Callable[[int], object] | None = None  # untimed, unmetered, before each cell


def _here() -> list[int]:
    return [os.getpid()]


@dataclass(frozen=True)
class System:
    name: str
    transport: str
    start: Callable[[_Context], contextlib.AbstractContextManager[Target]]
    baseline: str | None = None
    shape: str | None = None
    peer: str | None = None
    rabbit: bool = False
    levels: tuple[int, ...] | None = None  # None: the run's concurrency levels

    def cells(self, options: BenchOptions) -> list[Cell]:
        return [
            Cell(self.name, self.transport, c, self.baseline, self.shape, self.peer)
            for c in (self.levels or options.concurrency)
        ]


# the floors' HTTP server is the one ``serve`` runs: bus.gateway.server's protocol and limits
FLOOR_SERVER = server_options(HttpSettings())

FLOOR_CALL = [
    HttpCall("/floor", {"Content-Type": "application/json"}, orjson.dumps(request_body()).decode())
]


@contextlib.contextmanager
def _floor_http(ctx: _Context) -> Iterator[Target]:
    with serve_in_thread(http_floor_app(ctx.crypto), **FLOOR_SERVER) as server:
        yield ctx.http_target([server.url], FLOOR_CALL, _here())


@contextlib.contextmanager
def _floor_http_pika(ctx: _Context) -> Iterator[Target]:
    url = ctx.options.amqp_url
    with (
        pika_floor(url, ctx.crypto),
        serve_in_thread(http_floor_app(ctx.crypto, amqp_url=url), **FLOOR_SERVER) as server,
    ):
        yield ctx.http_target([server.url], FLOOR_CALL, _here())


PEER_CALL = [
    HttpCall("/peer", {"Content-Type": "application/json"}, orjson.dumps(request_body()).decode())
]


@contextlib.contextmanager
def _peer(ctx: _Context) -> Iterator[Target]:
    app = peer_app(ctx.crypto, ctx.options.amqp_url)
    with serve_in_thread(app, **FLOOR_SERVER) as server:
        yield ctx.http_target([server.url], PEER_CALL, _here())


@contextlib.contextmanager
def _peer_two(ctx: _Context) -> Iterator[Target]:
    keys, url = ctx.deployment.keys_dir, ctx.options.amqp_url

    def launch(name: str) -> Launch:
        def command(port: int) -> list[str]:
            return [sys.executable, "-m", "bench.peer", "--keys", str(keys),
                    "--listen", f"127.0.0.1:{port}"]

        return Launch(command, ctx.deployment.state / f"{name}.log",
                      lambda port: {"BENCH_PEER_AMQP_URL": url})

    with served([launch("peer-a"), launch("peer-b")]) as peers:
        urls, pids = [url for url, _ in peers], [pid for _, tree in peers for pid in tree]
        yield ctx.http_target(urls, PEER_CALL, pids)


@contextlib.contextmanager
def _floor_pika(ctx: _Context) -> Iterator[Target]:
    url, o = ctx.options.amqp_url, ctx.options

    def run(c: int) -> Sample:
        return run_threads(
            lambda i: PikaRequester(url, ctx.crypto),
            concurrency=c,
            requests=o.per_cell,
            warmup=o.warmup,
            max_seconds=o.max_seconds,
        )

    with pika_floor(url, ctx.crypto):
        yield Target(run, _here(), http=False)  # its clients run in this process


@contextlib.contextmanager
def _bus_embedded(ctx: _Context) -> Iterator[Target]:
    url = f"embedded://{ctx.deployment.state / 'queues.db'}"
    config = ctx.deployment.write_config(url, node_name="bench-embedded")
    calls = bus_calls(ctx.deployment.token)
    with in_process_node(config, url) as gateway:
        yield ctx.http_target([gateway], calls, _here())


@contextlib.contextmanager
def _bus_rabbitmq(ctx: _Context) -> Iterator[Target]:
    url = ctx.options.amqp_url
    config = ctx.deployment.write_config(url, node_name="bench-node-1")
    calls = bus_calls(ctx.deployment.token)
    with queues_removed(url, ["bench-node-1"]), in_process_node(config, url) as gateway:
        yield ctx.http_target([gateway], calls, _here())


@contextlib.contextmanager
def _bus_rabbitmq_two_nodes(ctx: _Context) -> Iterator[Target]:
    url = ctx.options.amqp_url
    configs = [ctx.deployment.write_config(url, node_name=f"bench-node-{n}") for n in ("a", "b")]
    calls = bus_calls(ctx.deployment.token)
    with queues_removed(url, ["bench-node-a", "bench-node-b"]), serve_nodes(configs) as nodes:
        urls, pids = [url for url, _ in nodes], [pid for _, tree in nodes for pid in tree]
        yield ctx.http_target(urls, calls, pids)


@contextlib.contextmanager
def _bus_embedded_workers(ctx: _Context) -> Iterator[Target]:
    url = f"embedded://{ctx.deployment.state / 'queues-workers.db'}"
    config = ctx.deployment.write_config(url, node_name="bench-workers")
    calls = bus_calls(ctx.deployment.token)
    with serve_nodes([config], workers=nproc()) as [(gateway, pids)]:
        yield ctx.http_target([gateway], calls, pids)


@contextlib.contextmanager
def _bus_bundle(ctx: _Context) -> Iterator[Target]:
    url = f"embedded://{ctx.deployment.state / 'queues-bundle.db'}"
    config = ctx.deployment.write_config(
        url, node_name="bench-bundle", slow_services=BUNDLE_SERVICES
    )
    with in_process_node(config, url) as gateway:
        yield ctx.http_target([gateway], bundle_calls(ctx.deployment.token), _here())


@contextlib.contextmanager
def _bus_async(ctx: _Context) -> Iterator[Target]:
    url = f"embedded://{ctx.deployment.state / 'queues-async.db'}"
    config = ctx.deployment.write_config(url, node_name="bench-async")
    calls = async_calls(ctx.deployment.token)
    with serve_nodes([config], workers=nproc()) as [(gateway, pids)]:
        yield ctx.http_target([gateway], calls, pids, expect=(202,))


@contextlib.contextmanager
def _demo(ctx: _Context) -> Iterator[Target]:
    with demo_stack(ctx.deployment.state / "demo") as stack:
        transport = stack.node.settings.transport_url()
        if not transport.startswith("embedded://"):
            ctx.notes.append(f"the demo row ran on {transport.split('://')[0]}, not embedded")
        calls = demo_calls(stack.token)
        yield ctx.http_target([stack.gateway.url], calls, _here())


SYSTEMS: tuple[System, ...] = (
    System("floor http", "-", _floor_http),
    System("bus embedded", "embedded", _bus_embedded, baseline="floor http"),
    System("bus embedded, workers", "embedded", _bus_embedded_workers, baseline="floor http"),
    System("floor pika", "rabbitmq", _floor_pika, rabbit=True),
    System("floor http+pika", "rabbitmq", _floor_http_pika, rabbit=True),
    System(PEER, "rabbitmq", _peer, rabbit=True),
    System(PEER_TWO, "rabbitmq", _peer_two, rabbit=True),
    System(
        "bus rabbitmq",
        "rabbitmq",
        _bus_rabbitmq,
        baseline="floor pika",
        shape="floor http+pika",
        peer=PEER,
        rabbit=True,
    ),
    System(
        "bus rabbitmq, 2 nodes",
        "rabbitmq",
        _bus_rabbitmq_two_nodes,
        baseline="floor pika",
        shape="floor http+pika",
        peer=PEER_TWO,
        rabbit=True,
    ),
    System("bus bundle of 5", "embedded", _bus_bundle),
    System("bus async acceptance", "embedded", _bus_async),
    System("demo REST+SQL", "embedded", _demo, levels=(1,)),
)


def _selected(options: BenchOptions) -> list[System]:
    """The systems ``--only`` names: a system's whole name picks that one alone ("floor http"
    is not "floor http+pika", which needs RabbitMQ); any other text every name containing it."""
    if not options.only:
        return list(SYSTEMS)
    names = {s.name for s in SYSTEMS}
    return [s for s in SYSTEMS
            if any(o == s.name if o in names else o in s.name for o in options.only)]


def run_bench(options: BenchOptions, console: Console) -> list[Result]:
    """Run every selected cell, print the table, and write RESULTS.md if asked."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    started = dt.datetime.now(dt.UTC)
    state = options.state_dir or Path(tempfile.mkdtemp(prefix="bus-bench-"))
    state.mkdir(parents=True, exist_ok=True)
    systems = _selected(options)
    problem, broker = (None, "")
    if any(s.rabbit for s in systems):
        problem, broker = rabbit_problem(options.amqp_url)
        if problem and wait_for_broker(options.amqp_url, timeout_s=30.0):  # a restart?
            problem, broker = rabbit_problem(options.amqp_url)
    results: list[Result] = []
    notes: list[str] = []
    try:
        deployment = BenchDeployment.create(state)
        crypto = Crypto.load(deployment.keys_dir)
        with contextlib.ExitStack() as own:
            if any(s.rabbit for s in systems) and not problem:
                # others use the broker too: this run's queues live in its own virtual host
                url, shared = own.enter_context(run_vhost(options.amqp_url))
                notes += [f"RabbitMQ: {shared}"] if shared else []
                options = replace(options, amqp_url=url)
                console.print(f"RabbitMQ virtual host: {urlsplit(url).path[1:] or '/'}")
            loadgen = own.enter_context(LoadGenerator(state / "loadgen.log"))
            ctx = _Context(options, console, loadgen, deployment, crypto, notes)
            console.print(
                f"benchmark: {options.per_cell} exchanges per cell (at most "
                f"{options.max_seconds:g} s), clients {list(options.concurrency)}, "
                f"load generator: {options.mode}; state {state}"
            )
            for system in systems:
                if system.rabbit and problem:
                    notes.append(f"{system.name}: left out: {problem}")
                    console.print(f"[yellow]{system.name}: left out: {problem}[/yellow]")
                    continue
                if _run_system(ctx, system, results) or not system.rabbit:
                    continue
                # Other work on the machine restarts the shared broker now and then (fault
                # tests): measure such a system once more when the broker is back.
                if wait_for_broker(options.amqp_url):
                    results[:] = [r for r in results if r.cell.system != system.name]
                    notes.append(f"{system.name}: had errors or failed; measured again")
                    console.print(f"[yellow]{system.name}: measuring again[/yellow]")
                    _run_system(ctx, system, results)
    finally:
        if options.state_dir is None:
            shutil.rmtree(state, ignore_errors=True)
    console.print(results_table(results, title="Exchanges through the bus and its floors"))
    targets = check_targets(results)
    for line in targets:
        style = "red" if "MISSED" in line else ("green" if line.endswith("met") else "")
        console.print(f"[{style}]{line}[/{style}]" if style else line, highlight=False)
    if options.write:
        machine = Machine(
            command=options.command,
            date=started.strftime("%Y-%m-%d %H:%M UTC"),
            nproc=nproc(),
            cpu=cpu_model(),
            versions=versions(broker),
            load_before=load,
            load_after=" ".join(f"{x:.2f}" for x in os.getloadavg()),
            code=code_state(),
            notes=notes,
        )
        method = method_text(options.mode, options.warmup, options.per_cell, options.max_seconds)
        write_results(options.results_path, results, machine, method=method, targets=targets)
        console.print(f"wrote {options.results_path}")
    return results


def _run_system(ctx: _Context, system: System, results: list[Result]) -> bool:
    """Measure every cell of ``system`` into ``results``; True if nothing failed."""
    console = ctx.console
    cells = system.cells(ctx.options)
    try:
        with contextlib.ExitStack() as stack:
            status = stack.enter_context(console.status(f"starting {system.name}…"))
            target = stack.enter_context(system.start(ctx))
            mq = broker_pid() if system.rabbit else None
            for cell in cells:
                status.update(f"{system.name}, {cell.concurrency} client(s)…")
                if target.prime is not None:
                    target.prime(cell.concurrency)
                roles = {"server": target.server}
                if target.http:
                    roles["client"] = ctx.loadgen.prepare(cell.concurrency)
                if mq is not None:
                    roles["broker"] = [mq]
                meter = CpuMeter(roles)
                meter.start()
                began = time.perf_counter()
                sample = target.run(cell.concurrency)
                wall = time.perf_counter() - began
                used = meter.stop()
                made = len(sample.latencies) + sample.errors + ctx.options.warmup * cell.concurrency
                result = summarise(cell, sample, cpu_s=used, exchanges=made, wall_s=wall)
                results.append(result)
                print_result(console, result, results)
            status.update(f"stopping {system.name}…")
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"
        ctx.notes.append(f"{system.name}: failed: {detail}")
        console.print(f"[red]{system.name} failed: {detail}[/red]")
        console.print(traceback.format_exc(limit=4), markup=False, highlight=False)
        return False
    return not any(r.errors for r in results if r.cell.system == system.name)
