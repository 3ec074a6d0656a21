"""Node processes for the fault tests, and deployments of several of them on the shared broker.

``NodeProcess`` runs ``python run_bus.py serve --config FILE --listen 127.0.0.1:PORT`` and waits
until the node answers ``/health/ready``; ``kill`` is ``kill -9``, ``stop`` a terminate (then a
kill if it does not end).

``BrokerDeployment`` is one bus on RabbitMQ made of several node processes that share one
configuration except ``node.name``/``node.hosts`` (one YAML per node). The broker is shared with
other runs (other tests, benchmarks), so a deployment is isolated by a tag: the agency members
are renamed ``<tag>-residence`` and ``<tag>-cadastre``, which makes their service queues
(``svc.<tag>-residence.residence-registration.v1`` …) this deployment's own, and the nodes are
named ``<tag>-<role>`` (their reply queues ``reply.<tag>-<role>.<host>.<pid>``); members and
services of the example config other than the portal and these two are left out. ``close`` kills
what is still running, deletes every queue the deployment made and takes its dead letters out of
the shared ``bus.dlq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pika
import pika.exceptions
import yaml
from starlette.types import Receive, Scope, Send

from bus.cli.app import new_token
from bus.transport import DeadLetter, reply_queue, service_queue
from bus.transport.rabbitmq.topology import scan_dead_letters
from demo import cadastre, residence_registry
from demo.scenario import PROPERTY, RESIDENCE, write_config
from signing import generate_member_key
from tests.live import AMQP_URL as AMQP

__all__ = [
    "AMQP",
    "ROOT",
    "BrokerDeployment",
    "NodeProcess",
    "SlowAgency",
    "delete_queues",
    "free_port",
]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NodeProcess:
    """``run_bus.py serve`` in a child process; returns once the node is ready (unless
    ``wait=False``: then call ``wait_ready``). A node that does not become ready is killed."""

    def __init__(self, config: Path, port: int, log: Path, *, wait: bool = True) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "run_bus.py"),
                "serve",
                "--config",
                str(config),
                "--listen",
                f"127.0.0.1:{port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        if wait:
            self.wait_ready()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout_s: float = 90.0) -> None:  # slow to start on a loaded machine
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                assert self.alive, self.log_path.read_text()
                try:
                    if httpx.get(self.url + "/health/ready", timeout=1).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            raise AssertionError(f"node {self.url} did not become ready")
        except BaseException:
            self.kill()
            raise

    def kill(self) -> None:
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


class SlowAgency:
    """The demo residence registry answering each lookup after ``delay_s`` (so that many
    requests are in flight at once), counting the lookups."""

    def __init__(self, db: Path, delay_s: float) -> None:
        self.app = residence_registry.create_app(db)
        self.delay_s = delay_s
        self.calls = 0
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        self.calls += 1
        self.in_flight += 1
        try:
            await asyncio.sleep(self.delay_s)
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def delete_queues(
    names: Sequence[str], *, dead_letters_of: Sequence[str] = (), url: str = AMQP
) -> None:
    """Delete these queues (with whatever they hold) from the broker, missing ones are fine;
    take the dead letters of the queues ``dead_letters_of`` out of the shared ``bus.dlq``."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        if dead_letters_of:
            mine = set(dead_letters_of)
            while scan_dead_letters(channel, lambda d: True if d.queue in mine else None):
                pass  # one taken per scan
        for name in names:
            try:
                channel.queue_delete(name)
            except pika.exceptions.ChannelClosedByBroker:
                channel = connection.channel()
    finally:
        connection.close()


class BrokerDeployment:
    """One bus on the broker: the demo config, isolated by ``tag``, one YAML per node."""

    def __init__(
        self,
        state: Path,
        *,
        prefix: str,
        residence_url: str,
        services: dict[str, Any] | None = None,
    ) -> None:
        self.state = state
        self.tag = f"{prefix}-{secrets.token_hex(3)}"
        self.members = {
            "residence-registry": f"{self.tag}-residence",
            "cadastre": f"{self.tag}-cadastre",
        }
        self.residence = self._renamed(RESIDENCE)
        self.property = self._renamed(PROPERTY)
        for member in ["portal", *self.members.values()]:
            generate_member_key(state / "keys", member)
        self.token, digest = new_token()
        path = write_config(
            state,
            residence_url=residence_url,
            cadastre_db=cadastre.create_database(state / "cadastre.db"),
            token_sha256=digest,
        )
        config: dict[str, Any] = yaml.safe_load(path.read_text())
        # Only these members and their services: what else the example config may name is not
        # this deployment's to declare or consume on the shared broker.
        kept = {"portal", *self.members}
        config["members"] = {m: v for m, v in config["members"].items() if m in kept}
        config["services"] = {
            s: v for s, v in config["services"].items() if s.partition("/")[0] in kept
        }
        config["access"] = [r for r in config["access"] if r["service"] in config["services"]]
        config.pop("inbox", None)  # its operators answer for members left out
        for old, new in self.members.items():
            member = config["members"].pop(old)
            member["public_key"] = str(state / "keys" / f"{new}.pub")
            config["members"][new] = member
        config["services"] = {self._renamed(s): v for s, v in config["services"].items()}
        for right in config["access"]:
            right["service"] = self._renamed(right["service"])
        for service, overrides in (services or {}).items():
            config["services"][self._renamed(service)].update(overrides)
        config["transport"] = {"url": AMQP}
        # every client of these tests is one address (127.0.0.1): the per-source throttles,
        # meant for many sources, would measure themselves (they have their own tests)
        wide = {"per_second": 10_000, "burst": 100_000}
        config["http"] = {"public": wide, "sign_in": wide, "anonymous": wide}
        self.config = config
        self.nodes: list[tuple[str, NodeProcess]] = []
        self.extra_queues: list[str] = []

    def _renamed(self, service: str) -> str:
        member, _, rest = service.partition("/")
        return f"{self.members.get(member, member)}/{rest}"

    @property
    def service_queues(self) -> list[str]:
        return [service_queue(s) for s in self.config["services"]]

    def write_node(self, role: str, hosts: list[str], **node: Any) -> tuple[str, Path]:
        """The YAML of node ``<tag>-<role>`` hosting ``hosts`` (demo member codes)."""
        name = f"{self.tag}-{role}"
        config = yaml.safe_load(yaml.safe_dump(self.config))
        config["node"].update(name=name, hosts=[self.members.get(m, m) for m in hosts], **node)
        path = self.state / f"{role}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return name, path

    def start(self, role: str, hosts: list[str], *, wait: bool = True, **node: Any) -> NodeProcess:
        """Start node ``<tag>-<role>`` as a process (its log: ``<state>/<role>.log``)."""
        name, path = self.write_node(role, hosts, **node)
        process = NodeProcess(path, free_port(), self.state / f"{role}.log", wait=False)
        self.nodes.append((name, process))
        if wait:
            process.wait_ready()
        return process

    def queue_depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (a passive declare)."""
        connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        try:
            return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
        finally:
            connection.close()

    @property
    def reply_queues(self) -> list[str]:
        host = socket.gethostname()
        return [reply_queue(f"{name}.{host}.{p.pid}") for name, p in self.nodes]

    def dead_letters(self) -> list[DeadLetter]:
        """The dead letters of this deployment's queues in the shared ``bus.dlq`` (requests,
        and replies their consumer dead-lettered; a reply that arrived after its request
        expired is dropped, not dead-lettered)."""
        mine = {*self.service_queues, *self.reply_queues, *self.extra_queues}
        found: list[DeadLetter] = []

        def visit(dead: DeadLetter) -> None:
            if dead.queue in mine:
                found.append(dead)

        connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        try:
            scan_dead_letters(connection.channel(), visit)
        finally:
            connection.close()
        return found

    def close(self) -> None:
        """Kill the node processes still running and delete every queue this deployment made
        (the broker must be up)."""
        for _, process in self.nodes:
            with contextlib.suppress(Exception):
                process.kill()
        mine = [*self.service_queues, *self.reply_queues, *self.extra_queues]
        delete_queues(mine, dead_letters_of=mine)
