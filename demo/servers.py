"""Run an ASGI app with uvicorn in a background thread: for the demo agencies, nodes and tests.

    with serve_in_thread(create_app(db)) as server:     # port 0: any free port
        httpx.get(server.url + "/health")

``serve_in_thread`` binds the listening socket itself (so port 0 works and the port is known at
once), or serves one bound beforehand with ``listening_socket`` (when the app must know its own
URL before it is made, as the demo node's ``documents.public_url``), returns when uvicorn has
started (lifespan startup included) and raises if it could not.
``stop()`` asks uvicorn to shut down gracefully, waits for the thread, and forces the exit if
the graceful shutdown takes too long. Uvicorn is told not to touch logging configuration
(``log_config=None``) nor signal handlers (it runs outside the main thread), so embedding it has
no side effects on the process.

``serve_process`` runs a node the deployed way instead, ``run_bus.py serve --workers N`` in a
child process (the demo's ``--workers``), and returns once it is ready.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
import uvicorn

from bus.cli.workers import listening_socket

__all__ = ["RunningServer", "ServeProcess", "listening_socket", "serve_in_thread", "serve_process"]

_ROOT = Path(__file__).resolve().parent.parent  # where run_bus.py is


class RunningServer:
    """A uvicorn server running in a daemon thread; stop it with ``stop()`` or ``with``."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket, name: str) -> None:
        self.server = server
        self._sock = sock
        bound = sock.getsockname()
        self.host: str = bound[0]
        self.port: int = bound[1]
        netloc = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{netloc}:{self.port}"
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self._sock])
        except BaseException as exc:  # incl. SystemExit from a failed startup: report, not crash
            self.error = exc

    def _start(self, timeout: float) -> None:
        self._thread.start()
        give_up = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > give_up:
                self.stop()
                why = f"{type(self.error).__name__}: {self.error}" if self.error else "timeout"
                raise RuntimeError(f"server on {self.url} did not start ({why})") from self.error
            time.sleep(0.01)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and self.server.started

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down gracefully; after ``timeout`` seconds force it. Safe to call twice."""
        self.server.should_exit = True
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                self.server.force_exit = True
                self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RunningServer {self.url} running={self.running}>"


def serve_in_thread(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 10.0,
    sock: socket.socket | None = None,
    **config: Any,
) -> RunningServer:
    """Serve ``app`` on ``host:port`` (0: a free port), or on ``sock`` (``listening_socket``),
    in a daemon thread; return once started.

    ``config`` goes to ``uvicorn.Config`` (e.g. ``ssl_certfile``, ``timeout_graceful_shutdown``).
    """
    settings: dict[str, Any] = {
        "log_config": None,
        "access_log": False,
        "ws": "none",
        "lifespan": "auto",
        "timeout_graceful_shutdown": 3,
    }
    settings.update(config)
    if sock is None:
        sock = listening_socket(host, port, settings.get("backlog", 2048))
    host, port = sock.getsockname()[:2]
    try:
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **settings))
    except BaseException:
        sock.close()
        raise
    running = RunningServer(server, sock, name=f"uvicorn-{host}:{sock.getsockname()[1]}")
    running._start(startup_timeout)
    return running


class ServeProcess:
    """A node served by ``run_bus.py serve --workers N`` in a child process (``serve_process``);
    ``url``, ``port`` and ``stop()`` as a ``RunningServer``'s."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
        self.proc = proc
        self.host = "127.0.0.1"
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._log = log

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (its workers finish what they have), then wait; kill after ``timeout``."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def serve_process(
    config: Path,
    *,
    workers: int,
    port: int = 0,
    log: Path,
    env: dict[str, str] | None = None,
    startup_timeout: float = 60.0,
) -> ServeProcess:
    """Run ``run_bus.py serve --config CONFIG --workers N`` on 127.0.0.1:``port`` (0: a free
    one), its output appended to ``log``; return once every worker is up (the supervisor's
    "every worker is up" line in ``log``) and ``/health/ready`` answers 200. Not before: one
    worker answering while another still starts would serve the caller's first requests from
    a node that may yet stop because that other worker cannot start."""
    if port == 0:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
    out = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, str(_ROOT / "run_bus.py"), "serve", "--config", str(config),
         "--listen", f"127.0.0.1:{port}", "--workers", str(workers)],
        stdout=out, stderr=subprocess.STDOUT, cwd=_ROOT, env={**os.environ, **(env or {})},
    )  # fmt: skip
    running = ServeProcess(proc, port, out)
    give_up = time.monotonic() + startup_timeout
    start = log.stat().st_size  # the log may hold an earlier run's lines
    while True:
        if proc.poll() is not None:
            running.stop()
            raise RuntimeError(f"node on {running.url} exited with {proc.returncode} (see {log})")
        if _all_up(log, start, workers):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(running.url + "/health/ready", timeout=1).status_code == 200:
                    return running
        if time.monotonic() > give_up:
            running.stop()
            raise RuntimeError(f"node on {running.url} not ready after {startup_timeout:g} s")
        time.sleep(0.1)


def _all_up(log: Path, start: int, workers: int) -> bool:
    """Whether the supervisor logged, after byte ``start`` of ``log``, that every worker is up
    (a single process has no supervisor: its readiness is the whole answer)."""
    if workers <= 1:
        return True
    with log.open("rb") as f:
        f.seek(start)
        return b'"every worker is up"' in f.read()
