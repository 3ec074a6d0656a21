"""``run_bus.py serve --workers N``: one node as N processes sharing one listening socket.

A node is one Python interpreter, so it gets at most one core. ``serve_workers`` (the
supervisor, the process ``serve`` started) binds the node's address once and starts N worker
processes (``multiprocessing``, spawned: each a fresh interpreter) that all accept on that socket;
each worker is the whole node — ``Node(settings, worker=i)`` and its gateway under uvicorn — and
they share its transport and state the way several nodes do (SQLite files in WAL mode with
row-level claims and transactions, or the broker and PostgreSQL): what one worker files, any
other reads. ``bus.node.wiring`` says which jobs only worker 0 runs (the retention purge, the
operator inbox's resender, resuming undelivered callbacks) and how each worker gets its own reply
queue.

* Start: every worker must come up (its gateway listening, ``Node.start`` done). A worker that
  cannot start (a key it cannot read, no audit secret, the audit store down) sends its reason
  to the supervisor, which prints it, stops the others and exits 2: nothing half-started.
* A worker that dies later (killed, crashed) is replaced under the same index; in-flight
  exchanges of that worker fail or are redelivered as after any crash (the embedded transport
  gives its claimed messages back when the replacement opens the file; RabbitMQ redelivers
  what it had not acked). A replacement that itself dies before it is up is tried again after
  a growing pause (at most ``_MAX_PAUSE_S``).
* Stop: SIGTERM or SIGINT to the supervisor sends SIGTERM to every worker, which stops
  accepting, finishes the requests it has, then stops its node (uvicorn's graceful shutdown);
  a worker still running after ``_STOP_TIMEOUT_S`` is killed. The supervisor exits 0.
* A worker whose supervisor is gone (killed with SIGKILL) exits at once: it finds its pipe to
  the supervisor closed.
* Each worker serves with the node's ``http:`` settings (``bus.gateway.server``), so
  ``http.max_connections`` caps each worker's connections: the node takes up to N times that.
* Metrics: the supervisor makes a fresh directory for prometheus-client's multiprocess mode and
  sets ``PROMETHEUS_MULTIPROC_DIR`` to it before starting any worker (prometheus-client reads it
  when first imported); ``/metrics`` on any worker adds up all of them (``bus.ops.metrics``). A
  dead worker's live gauges are dropped (``mark_process_dead``); its counters stay.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING

from bus.config.loader import load_settings
from bus.config.settings import BusSettings
from bus.ops.logs import configure_logging

if TYPE_CHECKING:
    from bus.node.wiring import Node
    from bus.ops.metrics import BusMetrics

__all__ = ["StartFailure", "default_workers", "listening_socket", "serve_workers", "start_node"]

log = logging.getLogger("bus.workers")

_STOP_TIMEOUT_S = 30.0  # a worker finishing its requests and stopping its node
_START_TIMEOUT_S = 120.0  # every worker up
_MAX_PAUSE_S = 30.0  # between tries of a replacement that keeps dying before it is up
_BACKLOG = 2048  # as uvicorn's


class StartFailure(Exception):
    """A node that cannot start, and why (printed without a trace)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def start_node(
    settings: BusSettings, *, worker: int | None = None, metrics: BusMetrics | None = None
) -> Node:
    """``Node(settings, …)``, its start-up problems as ``StartFailure``."""
    from bus.core.errors import BusUnavailable
    from bus.node.wiring import Node
    from bus.records.audit import AuditNotConfigured
    from signing import SigningError

    try:
        return Node(settings, worker=worker, metrics=metrics)
    except SigningError as exc:  # a key or certificate that cannot be used: say which
        raise StartFailure(exc.detail) from None
    except BusUnavailable as exc:  # the audit store down
        raise StartFailure(exc.detail) from None
    except AuditNotConfigured as exc:  # no audit secret
        raise StartFailure(str(exc)) from None


@dataclass(frozen=True)
class _Spec:
    """What a worker is told (pickled to the spawned process)."""

    config: Path
    index: int
    metrics_dir: Path


def listening_socket(host: str = "127.0.0.1", port: int = 0, backlog: int = _BACKLOG
                     ) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: a free port) and listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # inherited by the accepted connections: asyncio sets it only on sockets it knows to be
        # TCP, which a socket handed to another process does not show (its proto reads 0)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def _bind(host: str, port: int) -> socket.socket:
    """The node's listening socket, handed to every worker process."""
    sock = listening_socket(host, port)
    sock.set_inheritable(True)
    return sock


def _worker(spec: _Spec, sock: socket.socket, pipe: Connection) -> None:
    """A worker process: the node and its gateway on the shared socket."""
    import uvicorn

    from bus.gateway.app import create_app
    from bus.gateway.server import server_options
    from bus.ops.metrics import BusMetrics

    def orphaned() -> None:  # the supervisor's end closes when it dies, even by SIGKILL
        with contextlib.suppress(EOFError, OSError):
            while True:
                pipe.recv()
        os._exit(70)

    threading.Thread(target=orphaned, name="bus-worker-parent", daemon=True).start()
    settings = load_settings(spec.config)  # the supervisor checked it already
    configure_logging(settings.log_level)
    metrics = BusMetrics(multiprocess_dir=spec.metrics_dir)
    try:
        node = start_node(settings, worker=spec.index, metrics=metrics)
    except StartFailure as exc:
        pipe.send(("failed", exc.detail))
        raise SystemExit(2) from None

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                pipe.send(("ready", os.getpid()))

    config = uvicorn.Config(
        create_app(node), log_config=None, access_log=False, **server_options(settings.http)
    )  # slow clients closed, connections capped, as one process
    Server(config).run(sockets=[sock])


class _Workers:
    def __init__(self, config: Path, count: int, sock: socket.socket, metrics_dir: Path) -> None:
        self.config, self.count, self.sock, self.metrics_dir = config, count, sock, metrics_dir
        self.context = multiprocessing.get_context("spawn")
        self.procs: dict[int, tuple[BaseProcess, Connection]] = {}
        self.ready: set[int] = set()
        self.failures: dict[int, int] = {}  # index -> replacements that died before ready

    def spawn(self, index: int) -> None:
        ours, theirs = self.context.Pipe()
        spec = _Spec(self.config, index, self.metrics_dir)
        proc = self.context.Process(
            target=_worker, args=(spec, self.sock, theirs), name=f"bus-worker-{index}"
        )
        proc.start()
        theirs.close()
        self.procs[index] = (proc, ours)
        self.ready.discard(index)

    def terminate_all(self) -> None:
        for proc, _ in self.procs.values():
            if proc.is_alive() and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        give_up = time.monotonic() + _STOP_TIMEOUT_S
        for index, (proc, pipe) in list(self.procs.items()):
            proc.join(max(0.0, give_up - time.monotonic()))
            if proc.is_alive():
                log.warning("worker %d did not stop in time: killed", index)
                proc.kill()
                proc.join()
            pipe.close()
            self._forget(proc)
        self.procs.clear()

    def _forget(self, proc: BaseProcess) -> None:
        from prometheus_client import multiprocess

        if proc.pid is not None:
            multiprocess.mark_process_dead(proc.pid, str(self.metrics_dir))


def serve_workers(config: Path, settings: BusSettings, host: str, port: int, count: int) -> int:
    """Run the node of ``config`` as ``count`` workers on ``host:port`` until SIGTERM/SIGINT.

    Returns the exit code: 0 after a stop, 2 when a worker could not start (``StartFailure``
    raised with its reason)."""
    configure_logging(settings.log_level)
    sock = _bind(host, port)
    metrics_dir = Path(tempfile.mkdtemp(prefix="bus-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)  # read by the workers' import
    wake_r, wake_w = socket.socketpair()
    wake_w.setblocking(False)
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        with contextlib.suppress(OSError):
            wake_w.send(b"\0")

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    workers = _Workers(config, count, sock, metrics_dir)
    failure: str | None = None
    try:
        for index in range(count):
            workers.spawn(index)
        bound = sock.getsockname()
        log.info(
            "starting %d workers", count,
            extra={"bus": {"node": settings.node.name, "listen": f"{bound[0]}:{bound[1]}"}},
        )
        started_by = time.monotonic() + _START_TIMEOUT_S
        retry_at: dict[int, float] = {}
        while not stopping:
            failure = _watch(workers, wake_r, retry_at)
            if failure is not None:
                break
            if len(workers.ready) < count and time.monotonic() > started_by and not retry_at:
                failure = f"not every worker was up after {_START_TIMEOUT_S:g} s"
                break
        log.info("stopping %d workers", len(workers.procs))
    finally:
        workers.terminate_all()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        wake_r.close()
        wake_w.close()
        sock.close()
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    if failure is not None:
        raise StartFailure(failure)
    return 0


def _watch(workers: _Workers, wake: socket.socket, retry_at: dict[int, float]) -> str | None:
    """Wait for something to happen and act on it; the reason to give up, if there is one."""
    pipes = {pipe: index for index, (_, pipe) in workers.procs.items()}
    deaths = {proc.sentinel: index for index, (proc, _) in workers.procs.items()}
    now = time.monotonic()
    timeout = min([t - now for t in retry_at.values()], default=1.0)
    for ready in wait([*pipes, *deaths, wake], timeout=max(0.0, min(timeout, 1.0))):
        if ready is wake:
            with contextlib.suppress(OSError):
                wake.recv(64)
        elif isinstance(ready, Connection):
            index = pipes[ready]
            try:
                what, detail = ready.recv()
            except (EOFError, OSError):
                continue  # its death comes through the sentinel
            if what == "failed":
                return str(detail)
            workers.ready.add(index)
            workers.failures.pop(index, None)
            if len(workers.ready) == workers.count:
                log.info("every worker is up", extra={"bus": {"workers": workers.count}})
        elif isinstance(ready, int):
            index = deaths[ready]
            proc, pipe = workers.procs.pop(index)
            proc.join()
            pipe.close()
            workers._forget(proc)
            was_up = index in workers.ready
            workers.ready.discard(index)
            if not was_up and index not in workers.failures:  # never came up at start
                return f"worker {index} exited with {proc.exitcode} while starting (see its log)"
            tries = workers.failures.get(index, 0)
            pause = 0.0 if was_up else min(_MAX_PAUSE_S, 0.5 * 2**tries)
            workers.failures[index] = tries + (0 if was_up else 1)
            log.warning(
                "worker %d exited with %s: replaced", index, proc.exitcode,
                extra={"bus": {"worker": index, "pid": proc.pid, "exit": proc.exitcode}},
            )
            retry_at[index] = time.monotonic() + pause
    now = time.monotonic()
    for index, at in list(retry_at.items()):
        if at <= now:
            del retry_at[index]
            workers.spawn(index)
    return None
