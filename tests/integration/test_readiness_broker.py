"""Readiness follows the broker: a node on RabbitMQ is not ready while the broker's application
is stopped (``rabbitmqctl stop_app``: every connection is closed, new ones are refused), and is
ready again, without a restart, once the broker is back. Liveness never changes.

The test stops the shared broker for a few seconds: it always starts it again (``finally``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pika
import pytest
import yaml

from bus.cli.app import new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.node.wiring import Node
from bus.transport import service_queue
from demo import cadastre
from demo.data import PEOPLE
from demo.scenario import CONFIG_TEMPLATE, PROPERTY
from demo.servers import RunningServer, serve_in_thread
from signing import generate_member_key
from tests.live import AMQP_URL as AMQP

RABBITMQCTL = shutil.which("rabbitmqctl")

pytestmark = [
    pytest.mark.rabbitmq,
    pytest.mark.slow,
    pytest.mark.skipif(RABBITMQCTL is None, reason="needs rabbitmqctl"),
    pytest.mark.timeout(240),
]


def rabbitmqctl(*args: str) -> None:
    assert RABBITMQCTL is not None
    subprocess.run([RABBITMQCTL, *args], check=True, capture_output=True, timeout=120)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@dataclass
class RabbitNode:
    gateway: RunningServer
    token: str
    service: str

    def status(self, path: str) -> int:
        try:
            return httpx.get(self.gateway.url + path, timeout=5).status_code
        except httpx.HTTPError:
            return 0

    def ask(self) -> httpx.Response:
        return httpx.post(
            f"{self.gateway.url}/v1/services/{self.service}",
            json={"pinfl": PEOPLE[0].pinfl},
            headers={
                "Authorization": f"Bearer {self.token}",
                "X-Bus-Purpose": "housing-subsidy",
                "X-Bus-User": "officer-17",
            },
            timeout=20,
        )


@pytest.fixture
def rabbit_node(tmp_path: Path) -> Iterator[RabbitNode]:
    """One node on the shared broker, hosting the portal and a provider of its own (a test-only
    member, so its service queue is this test's alone), with the cadastre's SQL adapter."""
    tag = f"test-{uuid.uuid4().hex[:8]}"
    for member in ("portal", tag):
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    template = yaml.safe_load(CONFIG_TEMPLATE.read_text())
    service = f"{tag}/property-ownership/v1"
    adapter = {
        **template["services"][PROPERTY]["adapter"],
        "url": f"sqlite:///{cadastre.create_database(tmp_path / 'cadastre.db')}",
    }
    config = {
        "node": {"name": tag, "hosts": ["portal", tag], "keys_dir": str(tmp_path / "keys")},
        "transport": {"url": AMQP},
        "members": {
            "portal": {"public_key": str(tmp_path / "keys/portal.pub"), "api_token_sha256": digest},
            tag: {"public_key": str(tmp_path / f"keys/{tag}.pub")},
        },
        "services": {service: {**template["services"][PROPERTY], "adapter": adapter}},
        "access": [{"client": "portal", "service": service, "purpose": ["housing-subsidy"]}],
        "audit": {"secret": "test-only-audit-secret-0123456789"},
        "documents": {"public_url": "http://127.0.0.1:8080"},
        "allow_plain_secrets": True,  # the test broker's guest password and a test audit secret
    }
    path = tmp_path / "bus.yaml"
    path.write_text(yaml.safe_dump(config))
    node = Node(load_settings(path))
    try:
        with serve_in_thread(create_app(node)) as gateway:
            yield RabbitNode(gateway, token, service)
    finally:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        try:
            connection.channel().queue_delete(service_queue(service))
        finally:
            connection.close()


def test_not_ready_while_the_broker_is_stopped_ready_again_after(rabbit_node: RabbitNode) -> None:
    wait_for(lambda: rabbit_node.status("/health/ready") == 200, 30, "the node to be ready")
    assert rabbit_node.ask().status_code == 200  # the reply consumer is running too

    try:
        rabbitmqctl("stop_app")
        wait_for(lambda: rabbit_node.status("/health/ready") == 503, 30, "not ready")
        body = httpx.get(rabbit_node.gateway.url + "/health/ready", timeout=5).json()
        checks = {c["name"]: c for c in body["checks"]}
        assert body["status"] == "not-ready"
        assert checks["transport"]["ok"] is False
        assert checks["trust-store"]["ok"] is True
        metrics = httpx.get(rabbit_node.gateway.url + "/metrics", timeout=10).text
        assert "bus_transport_connected 0.0" in metrics
        assert "bus_ready 0.0" in metrics
        assert rabbit_node.status("/health/live") == 200
    finally:
        rabbitmqctl("start_app")

    wait_for(lambda: rabbit_node.status("/health/ready") == 200, 60, "ready again")
    assert rabbit_node.ask().status_code == 200
