"""Servers under test as processes of their own: started, waited for, their pids, stopped.

``served(launches)`` starts one process per ``Launch``: a command listening on the port given,
with variables of its own that may name that port, and without the ``BUS_*`` variables of this
environment (a developer's settings must not leak into a cell); its output goes to a 0600 log
file. It waits until each answers ``GET /health/ready`` with 200, yields each one's URL and the
pids of its process tree (a supervisor and its workers: the server's CPU), and stops them all
on the way out (SIGTERM, then SIGKILL after 15 s).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from signing.files import private_file

__all__ = ["Launch", "free_port", "served"]

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Launch:
    """One server process: ``command(port)`` is its argv, listening on 127.0.0.1:port."""

    command: Callable[[int], list[str]]
    log: Path
    env: Callable[[int], dict[str, str]] = lambda port: {}  # added to the cleaned environment


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            raise RuntimeError(f"server at {url} exited with {proc.returncode} (see its log)")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} not ready after {timeout:g} s")


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux ``/proc``; just ``pid`` elsewhere)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


@contextlib.contextmanager
def served(launches: list[Launch]) -> Iterator[list[tuple[str, list[int]]]]:
    """Start every launch; yields (URL, pids) for each once all are ready."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUS_")}
    procs: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
    urls: list[str] = []
    try:
        for launch in launches:
            port = free_port()
            log = private_file(launch.log).open("ab")
            try:
                proc = subprocess.Popen(
                    launch.command(port),
                    stdout=log,
                    stderr=log,
                    env={**env, **launch.env(port)},
                    cwd=ROOT,
                )
            except BaseException:
                log.close()
                raise
            procs.append((proc, log))
            urls.append(f"http://127.0.0.1:{port}")
        for url, (proc, _) in zip(urls, procs, strict=True):
            _wait_ready(url, proc)
        yield [(url, _process_tree(proc.pid)) for url, (proc, _) in zip(urls, procs, strict=True)]
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, out in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            out.close()
