"""Killing a node mid-request loses nothing: the unacked request is redelivered after restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from bus.cli.app import DEMO_MEMBERS, new_token
from demo import cadastre, residence_registry
from demo.data import AZIZ
from demo.scenario import RESIDENCE, write_config
from demo.servers import serve_in_thread
from signing import generate_member_key
from tests.faults.nodes import NodeProcess
from tests.faults.nodes import free_port as _free_port

pytestmark = pytest.mark.slow


class HangFirstLookup:
    """The residence registry, except that its first lookup hangs (the node dies meanwhile)."""

    def __init__(self, db: Path) -> None:
        self.app = residence_registry.create_app(db)
        self.lookups = 0
        self.first = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            self.lookups += 1
            if self.lookups == 1:
                self.first.set()
                await asyncio.sleep(60)
        await self.app(scope, receive, send)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[Path, HangFirstLookup, str]]:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    agency = HangFirstLookup(tmp_path / "residence.db")
    with serve_in_thread(agency, timeout_graceful_shutdown=1) as server:
        config = write_config(
            tmp_path,
            residence_url=server.url,
            cadastre_db=cadastre.create_database(tmp_path / "cadastre.db"),
            token_sha256=digest,
        )
        text = config.read_text().replace("timeout_s: 5", "timeout_s: 40", 1)
        config.write_text(text)
        yield config, agency, token


def test_killed_node_redelivers_the_unacked_request_after_restart(
    deployment: tuple[Path, HangFirstLookup, str], tmp_path: Path
) -> None:
    config, agency, token = deployment
    port = _free_port()
    node = NodeProcess(config, port, tmp_path / "node.log")

    def ask() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the node is killed under this request
            httpx.post(
                f"{node.url}/v1/services/{RESIDENCE}",
                json={"pinfl": AZIZ.pinfl},
                timeout=60,
                headers={
                    "Authorization": f"Bearer {token}",
                    "X-Bus-Purpose": "child-benefit",
                    "X-Bus-User": "officer-17",
                },
            )

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    try:
        assert agency.first.wait(20), "the request never reached the agency"
        node.kill()  # mid-request: the message was delivered to the provider worker, never acked
        assert agency.lookups == 1

        node = NodeProcess(config, port, tmp_path / "node.log")
        deadline = time.monotonic() + 20
        while agency.lookups < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert agency.lookups == 2, "the unacked request was not redelivered after restart"
        time.sleep(0.5)  # let the redelivered request be answered and acked
        node.stop()

        # Acked now: a further restart does not deliver it a third time.
        node = NodeProcess(config, port, tmp_path / "node.log")
        time.sleep(1.0)
        assert agency.lookups == 2
    finally:
        node.stop()
        asker.join(5)
    assert os.path.getsize(tmp_path / "node.log") > 0
