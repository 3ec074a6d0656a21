"""Load generation: concurrent clients that time every exchange.

Two parts:

* ``run_threads`` drives ``concurrency`` client threads through ``warmup`` untimed exchanges
  each, then through ``requests`` timed ones in total (taken from one shared counter, so fast
  clients do more), stopping early after ``max_seconds``. It returns a ``Sample``: the latency of
  every successful exchange, the errors, and the wall time from the start signal to the last
  answer. The in-process pika floor uses it directly.
* ``LoadGenerator`` runs HTTP load from **separate processes** (``python -m bench.loadgen``,
  jobs and results as JSON lines over stdin/stdout; up to 32 clients per process), so the
  server under test has the interpreter's lock of the benchmark process to itself and the
  clients' CPU shows up as what it is on a real machine: a competitor for the same cores. Its
  ``mode`` is ``threads`` (one ``httpx.Client`` per thread, the default: it loaded the servers
  best on this 2-core machine) or ``asyncio`` (tasks sharing one ``httpx.AsyncClient``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Literal, Protocol

import httpx

__all__ = ["HttpCall", "HttpJob", "LoadGenerator", "Sample", "run_threads"]

Mode = Literal["threads", "asyncio"]


class UnexpectedAnswer(Exception):
    """The server answered with a status the job did not expect (the first such is reported)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")


@dataclass
class Sample:
    """What one cell measured (seconds)."""

    latencies: list[float]
    errors: int
    elapsed: float
    first_error: str | None = None


class Exchange(Protocol):
    """One client: each call makes one exchange and says whether it succeeded."""

    def __call__(self, n: int) -> bool: ...


def run_threads(
    open_client: Callable[[int], AbstractContextManager[Exchange]],
    *,
    concurrency: int,
    requests: int,
    warmup: int,
    max_seconds: float,
) -> Sample:
    """Drive ``concurrency`` threads, each with its own client ``open_client(i)``."""
    counter = itertools.count()
    start = threading.Barrier(concurrency + 1)
    stop_at = [float("inf")]
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    last: list[float] = [0.0] * concurrency
    errors = [0] * concurrency
    first_error: list[str] = []

    def client(i: int) -> None:
        try:
            with open_client(i) as exchange:
                for k in range(warmup):
                    exchange(i + k)
                start.wait()
                mine = latencies[i]
                while True:
                    n = next(counter)
                    if n >= requests or time.perf_counter() > stop_at[0]:
                        break
                    t0 = time.perf_counter()
                    try:
                        ok = exchange(n)
                    except Exception as exc:  # counted, and the client goes on
                        ok = False
                        first_error.append(f"{type(exc).__name__}: {exc}")
                    t1 = time.perf_counter()
                    if ok:
                        mine.append(t1 - t0)
                    else:
                        errors[i] += 1
                    last[i] = t1
        except threading.BrokenBarrierError:
            return
        except Exception as exc:  # a client that dies is an error of the cell, not a crash
            errors[i] += 1
            first_error.append(f"{type(exc).__name__}: {exc}")
            start.abort()

    threads = [
        threading.Thread(target=client, args=(i,), name=f"bench-client-{i}", daemon=True)
        for i in range(concurrency)
    ]
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait()
    began = time.perf_counter()
    stop_at[0] = began + max_seconds
    for t in threads:
        t.join()
    flat = [x for per in latencies for x in per]
    elapsed = max(last) - began if flat else 0.0
    return Sample(flat, sum(errors), elapsed, first_error[0] if first_error else None)


@dataclass(frozen=True)
class HttpCall:
    """One kind of request: POST ``path`` with ``headers`` and a JSON ``body``."""

    path: str
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class HttpJob:
    """One cell of HTTP load: client ``i`` talks to ``bases[i % len(bases)]``."""

    bases: list[str]
    calls: list[HttpCall]
    concurrency: int
    requests: int
    warmup: int
    max_seconds: float
    mode: Mode = "threads"
    expect: list[int] = field(default_factory=lambda: [200])


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: httpx builds one per client otherwise (about 24 ms of CPU
    each, which would be charged to the cell; the servers are plain HTTP anyway)."""
    return ssl.create_default_context()


class _HttpClient:
    def __init__(self, job: HttpJob, i: int) -> None:
        self._job = job
        self._client = httpx.Client(
            base_url=job.bases[i % len(job.bases)], timeout=30.0, verify=_tls_context()
        )
        self._calls = [(c.path, c.headers, c.body.encode()) for c in job.calls]

    def __enter__(self) -> _HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def __call__(self, n: int) -> bool:
        path, headers, body = self._calls[n % len(self._calls)]
        r = self._client.post(path, content=body, headers=headers)
        r.read()
        if r.status_code not in self._job.expect:
            raise UnexpectedAnswer(r.status_code, r.text)
        return True


def _run_http_threads(job: HttpJob) -> Sample:
    return run_threads(
        lambda i: _HttpClient(job, i),
        concurrency=job.concurrency,
        requests=job.requests,
        warmup=job.warmup,
        max_seconds=job.max_seconds,
    )


async def _run_http_asyncio(job: HttpJob) -> Sample:
    calls = [(c.path, c.headers, c.body.encode()) for c in job.calls]
    limits = httpx.Limits(
        max_connections=job.concurrency, max_keepalive_connections=job.concurrency
    )
    clients = [
        httpx.AsyncClient(base_url=base, timeout=30.0, limits=limits, verify=_tls_context())
        for base in job.bases
    ]
    counter = itertools.count()
    latencies: list[float] = []
    errors = 0
    last = 0.0
    stop_at = float("inf")
    ready = 0
    all_ready, go = asyncio.Event(), asyncio.Event()
    first_error: list[str] = []

    async def one(client: httpx.AsyncClient, n: int) -> bool:
        path, headers, body = calls[n % len(calls)]
        r = await client.post(path, content=body, headers=headers)
        if r.status_code not in job.expect:
            raise UnexpectedAnswer(r.status_code, r.text)
        return True

    async def task(i: int) -> None:
        nonlocal errors, last, ready
        client = clients[i % len(clients)]
        try:
            for k in range(job.warmup):
                await one(client, i + k)
        finally:
            ready += 1
            if ready == job.concurrency:
                all_ready.set()
        await go.wait()
        while True:
            n = next(counter)
            if n >= job.requests or time.perf_counter() > stop_at:
                return
            t0 = time.perf_counter()
            try:
                ok = await one(client, n)
            except (httpx.HTTPError, UnexpectedAnswer) as exc:
                ok = False
                first_error.append(f"{type(exc).__name__}: {exc}")
            t1 = time.perf_counter()
            if ok:
                latencies.append(t1 - t0)
            else:
                errors += 1
            last = t1

    try:
        tasks = [asyncio.create_task(task(i)) for i in range(job.concurrency)]
        await all_ready.wait()
        began = time.perf_counter()
        stop_at = began + job.max_seconds
        go.set()
        await asyncio.gather(*tasks)
    finally:
        for client in clients:
            await client.aclose()
    return Sample(
        latencies,
        errors,
        (last - began) if latencies else 0.0,
        first_error[0] if first_error else None,
    )


def _serve_jobs(stdin: IO[str], stdout: IO[str]) -> None:
    """The load generator process: one JSON job per line in, one JSON sample per line out
    (after a first line saying it has started)."""
    stdout.write("ready\n")
    stdout.flush()
    for line in stdin:
        if not line.strip():
            continue
        raw = json.loads(line)
        job = HttpJob(**{**raw, "calls": [HttpCall(**c) for c in raw["calls"]]})
        try:
            if job.mode == "asyncio":
                sample = asyncio.run(_run_http_asyncio(job))
            else:
                sample = _run_http_threads(job)
        except Exception as exc:
            sample = Sample([], job.requests, 0.0, f"{type(exc).__name__}: {exc}")
        stdout.write(json.dumps(asdict(sample)) + "\n")
        stdout.flush()


class _Worker:
    """One load generator process: JSON jobs in, JSON samples out."""

    def __init__(self, log: IO[bytes] | None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            bufsize=1,
        )
        self._started = False

    def started(self) -> None:
        """Wait until the process has imported what it needs (so that is not charged to a cell)."""
        if not self._started:
            assert self.proc.stdout is not None
            if self.proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"load generator did not start ({self.proc.poll()})")
            self._started = True

    def send(self, job: HttpJob) -> None:
        self.started()
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(asdict(job)) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> Sample:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator exited with {self.proc.wait()}")
        data: dict[str, Any] = json.loads(line)
        return Sample(**data)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class LoadGenerator:
    """Load generator processes; ``run(job)`` returns the ``Sample``. Close it when done.

    A job's clients are spread over ``processes_for(concurrency)`` processes, at most
    ``clients_per_process`` threads each. The default keeps up to 32 clients in one process:
    on this 2-core machine 32 threads in one interpreter cost no more CPU per exchange than
    4 processes of 8 (about 0.5 ms with httpx; a throw-away TLS context per client is what
    made it look dearer). Processes start their timed phase independently (within
    milliseconds of each other); the cell's wall time is the longest of theirs.
    """

    def __init__(self, log_path: Path | None = None, *, clients_per_process: int = 32) -> None:
        self._log: IO[bytes] | None = log_path.open("ab") if log_path else None
        self._per_process = max(1, clients_per_process)
        self._workers: list[_Worker] = [_Worker(self._log)]

    @property
    def pid(self) -> int:
        """The first process's pid (see ``pids`` for all of them)."""
        return self._workers[0].proc.pid

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    def processes_for(self, concurrency: int) -> int:
        return max(1, -(-concurrency // self._per_process))

    def prepare(self, concurrency: int) -> list[int]:
        """Start the processes a job of ``concurrency`` clients needs; return their pids."""
        n = min(self.processes_for(concurrency), concurrency)
        while len(self._workers) < n:
            self._workers.append(_Worker(self._log))
        for worker in self._workers[:n]:
            worker.started()
        return [w.proc.pid for w in self._workers[:n]]

    def run(self, job: HttpJob) -> Sample:
        n = len(self.prepare(job.concurrency))
        shares = [job.concurrency // n + (1 if i < job.concurrency % n else 0) for i in range(n)]
        for i, (worker, clients) in enumerate(zip(self._workers, shares, strict=False)):
            requests = job.requests * clients // job.concurrency
            bases = job.bases[i % len(job.bases) :] + job.bases[: i % len(job.bases)]
            worker.send(replace(job, bases=bases, concurrency=clients, requests=requests))
        samples = [worker.receive() for worker in self._workers[:n]]
        errors = [s.first_error for s in samples if s.first_error]
        return Sample(
            [x for s in samples for x in s.latencies],
            sum(s.errors for s in samples),
            max(s.elapsed for s in samples),
            errors[0] if errors else None,
        )

    def close(self) -> None:
        for worker in self._workers:
            worker.close()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    _serve_jobs(sys.stdin, sys.stdout)
