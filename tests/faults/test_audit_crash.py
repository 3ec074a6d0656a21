"""A node killed between the adapter's answer and the audit write loses neither the request nor
its audit entry: the entry was not durable, so the answer was not sent and the request not
acked; after the restart the request is delivered again, recorded, and answered."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from bus.cli.app import DEMO_MEMBERS, new_token
from bus.records.audit import SqliteAuditStore, verify
from demo import cadastre, residence_registry
from demo.data import AZIZ
from demo.scenario import RESIDENCE, write_config
from demo.servers import serve_in_thread
from signing import generate_member_key

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class CountingAgency:
    def __init__(self, db: Path) -> None:
        self.app = residence_registry.create_app(db)
        self.lookups = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            self.lookups += 1
        await self.app(scope, receive, send)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serving:
    """``run_bus.py serve`` in a child process, ready when this returns."""

    def __init__(self, config: Path, log: Path) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "run_bus.py"), "serve", "--config", str(config),
             "--listen", f"127.0.0.1:{port}"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, log.read_text()
            try:
                if httpx.get(self.url + "/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("node did not become ready")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self._log.close()


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[Path, CountingAgency, str]]:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    db = tmp_path / "residence.db"
    residence_registry.seed(db)
    agency = CountingAgency(db)
    with serve_in_thread(agency, timeout_graceful_shutdown=1) as server:
        config = write_config(
            tmp_path,
            residence_url=server.url,
            cadastre_db=cadastre.create_database(tmp_path / "cadastre.db"),
            token_sha256=digest,
        )
        config.write_text(config.read_text().replace("timeout_s: 5", "timeout_s: 40", 1))
        yield config, agency, token


def _recorded(audit_db: Path, correlation: str) -> list[tuple[str, str, str | None]]:
    store = SqliteAuditStore(audit_db)
    try:
        return [
            (e.outcome, e.side, e.subject) for e in store.entries() if e.correlation == correlation
        ]
    finally:
        store.close()


def test_a_crash_before_the_audit_write_loses_neither(
    deployment: tuple[Path, CountingAgency, str], tmp_path: Path
) -> None:
    config, agency, token = deployment
    audit_db = tmp_path / "audit.db"
    node = Serving(config, tmp_path / "node.log")
    correlation = str(uuid.uuid4())
    try:
        # Hold the audit database's write lock: the node's audit write waits on it.
        blocker = sqlite3.connect(audit_db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")

        def ask() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the node dies under it
                httpx.post(
                    f"{node.url}/v1/services/{RESIDENCE}",
                    json={"pinfl": AZIZ.pinfl},
                    headers={"Authorization": f"Bearer {token}", "X-Bus-User": "officer-17",
                             "X-Bus-Purpose": "child-benefit", "X-Bus-Correlation": correlation},
                    timeout=60,
                )

        asking = threading.Thread(target=ask, daemon=True)
        asking.start()
        deadline = time.monotonic() + 20
        while agency.lookups < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert agency.lookups == 1
        time.sleep(0.5)  # the adapter has answered; the worker waits on the audit write
        node.kill()
        blocker.execute("ROLLBACK")
        blocker.close()
        asking.join(10)
        assert _recorded(audit_db, correlation) == []  # the entry never became durable

        node = Serving(config, tmp_path / "node.log")  # the same queue file and audit log
        deadline = time.monotonic() + 20
        while not _recorded(audit_db, correlation) and time.monotonic() < deadline:
            time.sleep(0.05)
        secret = (tmp_path / "audit.secret").read_text().strip().encode()
        subject = hmac.new(secret, AZIZ.pinfl.encode(), hashlib.sha256).hexdigest()
        assert _recorded(audit_db, correlation) == [("ok", "provider", subject)]
        assert agency.lookups == 2  # delivered again after the restart, and answered
        store = SqliteAuditStore(audit_db)
        try:
            assert verify(store.entries())[2] is None
        finally:
            store.close()
        # and the request is settled: nothing left in its queue
        text = httpx.get(node.url + "/metrics", timeout=5).text
        depth = [ln for ln in text.splitlines()
                 if ln.startswith("bus_queue_depth_messages") and RESIDENCE in ln]
        assert depth and float(depth[0].split()[-1]) == 0
    finally:
        node.stop()
