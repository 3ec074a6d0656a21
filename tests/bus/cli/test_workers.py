"""``run_bus.py serve --workers N`` (``bus.cli.workers``): one node as N processes.

The node answers with the benchmark's ``bench-echo`` adapter, so it is started as
``python -m bench.serve`` (``run_bus.py serve`` with that kind registered, in every worker too).

Which worker takes a connection is the kernel's choice; the tests decide it by stopping the other
worker (SIGSTOP) while they ask, so a stopped worker cannot accept.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from bench.bus_run import BenchDeployment
from bench.workload import PURPOSE, SERVICE, USER, request_body

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found.update(int(c) for c in (task / "children").read_text().split())
    return {c for c in found if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()}


def _eventually(check, what: str, timeout_s: float = 30.0):  # type: ignore[no-untyped-def]
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not so after {timeout_s:g} s: {what}")


class Served:
    def __init__(self, tmp_path: Path, *, delay_s: float = 0.0) -> None:
        deployment = BenchDeployment.create(tmp_path)
        config = deployment.write_config(
            f"embedded://{tmp_path / 'queues.db'}", node_name="workers", delay_s=delay_s
        )
        self.token = deployment.token
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.log = tmp_path / "serve.log"
        self._log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.serve", "-c", str(config),
             "--listen", self.url.removeprefix("http://"), "--workers", "2"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip

    def wait_up(self) -> set[int]:
        def up() -> set[int] | None:
            assert self.proc.poll() is None, self.log.read_text()
            workers = _children(self.proc.pid)
            if len(workers) == 2 and "every worker is up" in self.log.read_text():
                return workers
            return None

        return _eventually(up, "two workers up")

    def ask(self) -> httpx.Response:
        return httpx.post(  # a new connection each time: any worker may accept it
            f"{self.url}/v1/services/{SERVICE}",
            headers={"Authorization": f"Bearer {self.token}", "X-Bus-Purpose": PURPOSE,
                     "X-Bus-User": USER, "Content-Type": "application/json"},
            content=orjson.dumps(request_body()), timeout=20,
        )  # fmt: skip

    def exchanges(self) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        found = re.search(r'^bus_exchanges_total\{[^}]*outcome="ok"[^}]*\} (\S+)$', text, re.M)
        return float(found.group(1)) if found else 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    node = Served(tmp_path)
    try:
        yield node
    finally:
        node.stop()


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.timeout(90)
def test_two_workers_answer_and_metrics_add_up_over_both(served: Served) -> None:
    first, second = sorted(served.wait_up())
    with stopped(first):
        assert [served.ask().status_code for _ in range(3)] == [200] * 3  # the second's
        # (a worker counts an exchange just after its answer went out)
        _eventually(lambda: served.exchanges() == 3, "the second counted its three")
    with stopped(second):
        assert [served.ask().status_code for _ in range(2)] == [200] * 2  # the first's
        # scraped from the first alone: the second's three are in it
        _eventually(lambda: served.exchanges() == 5, "five counted")


@pytest.mark.timeout(90)
def test_a_killed_worker_is_replaced_and_the_node_keeps_answering(served: Served) -> None:
    first, second = sorted(served.wait_up())
    with stopped(second):
        assert served.ask().status_code == 200  # the first's
        _eventually(lambda: served.exchanges() == 1, "counted before it is killed")
    os.kill(first, signal.SIGKILL)
    assert [served.ask().status_code for _ in range(3)] == [200] * 3  # the second answers
    replacement = _eventually(
        lambda: next(iter(_children(served.proc.pid) - {first, second}), None), "a new worker"
    )
    _eventually(lambda: served.log.read_text().count("every worker is up") == 2, "it is up")
    with stopped(second):
        assert [served.ask().status_code for _ in range(2)] == [200] * 2  # the replacement's
    _eventually(lambda: served.exchanges() == 6, "the killed worker's one still counted")
    assert "worker 0 exited with -9: replaced" in served.log.read_text()
    assert replacement not in (first, second)


@pytest.mark.timeout(90)
def test_sigterm_finishes_the_requests_in_flight_and_stops_every_worker(
    tmp_path: Path,
) -> None:
    node = Served(tmp_path, delay_s=1.5)  # the agency takes 1.5 s
    try:
        workers = node.wait_up()
        answers: list[int] = []
        asking = threading.Thread(target=lambda: answers.append(node.ask().status_code))
        asking.start()
        _eventually(lambda: _inflight(node), "a request in flight")
        node.proc.send_signal(signal.SIGTERM)
        assert node.proc.wait(30) == 0
        asking.join(10)
        assert answers == [200]  # answered, not cut off
        assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        node.stop()


def _inflight(node: Served) -> str:
    """The metrics lines of deliveries in flight now (empty while none)."""
    with contextlib.suppress(httpx.HTTPError):
        text = httpx.get(f"{node.url}/metrics", timeout=5).text
        return "\n".join(
            line for line in text.splitlines()
            if line.startswith("bus_provider_inflight_requests{") and not line.endswith(" 0.0")
        )
    return ""


@pytest.mark.timeout(60)
def test_a_worker_that_cannot_start_stops_the_node_with_its_reason(tmp_path: Path) -> None:
    deployment = BenchDeployment.create(tmp_path)
    config = deployment.write_config(f"embedded://{tmp_path / 'queues.db'}")
    (tmp_path / "keys" / "portal.key").write_text("not a key")
    done = subprocess.run(
        [sys.executable, "-m", "bench.serve", "-c", str(config),
         "--listen", f"127.0.0.1:{_free_port()}", "--workers", "2"],
        capture_output=True, text=True, cwd=ROOT, timeout=50,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "cannot start" in done.stderr and "portal.key" in done.stderr
    assert "Traceback" not in done.stderr
