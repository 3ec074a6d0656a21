"""The bus under load: a bench deployment, nodes in this process or as ``run_bus.py serve``.

``BenchDeployment.create(state)`` makes the members' keys (``portal``, ``echo-agency``) and a
portal API token in a state folder. ``write_config`` writes a node configuration for it: one
service ``echo-agency/echo/v1`` answered by the trivial ``bench-echo`` adapter (registered in this
process by ``write_config``: it is not an installed kind), one access right
(portal, purpose ``benchmark``), and the transport URL asked for (``embedded://…`` or
``amqp://…``). Requests go through the whole bus: the HTTP gateway (token, body limit, schema),
access rights, the envelope, signing, the transport, the provider worker (verify, access again,
validate, adapter, minimise, sign), the reply, and verification of the answer.

* ``in_process_node`` runs one node and its gateway in this process (``serve_in_thread``), with
  the transport opened from the URL given, so a ``BUS_TRANSPORT__URL`` in the environment cannot
  turn an embedded cell into a RabbitMQ one;
* ``serve_nodes`` starts ``n`` nodes as ``python -m bench.serve --workers W`` processes
  (``run_bus.py serve`` knowing ``bench-echo``: the deployment path; each has its own name,
  hence its own reply queue; ``bench.processes``) and
  waits until they are ready; it yields each node's URL and the pids of its processes (the
  supervisor and its workers, whose CPU is the server's);
* ``queues_removed`` deletes the durable queues those nodes made on the (shared) broker;
* ``demo_stack`` starts the demo's real path (``demo.scenario.start_stack``: a REST residence
  registry and an SQL cadastre on the embedded transport) and ``demo_calls`` asks both services
  in turn about people they know.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pika
import pika.exceptions
import yaml

from adapters import register_kind
from bench.loadgen import HttpCall
from bench.processes import Launch, served
from bench.trivial_adapter import EchoAdapter
from bench.workload import CLIENT, PROVIDER, PURPOSE, SERVICE, USER, request_body
from bus.cli.app import new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.gateway.server import server_options
from bus.node.wiring import Node
from bus.ops.logs import configure_logging
from bus.transport import open_transport, reply_queue, service_queue
from demo.scenario import DemoStack, start_stack
from demo.servers import serve_in_thread
from signing import generate_member_key
from signing.files import write_private

__all__ = [
    "BUNDLE_DELAYS_S",
    "BUNDLE_SERVICES",
    "BenchDeployment",
    "async_calls",
    "bundle_calls",
    "bus_calls",
    "demo_calls",
    "demo_stack",
    "in_process_node",
    "queues_removed",
    "serve_nodes",
]

AUDIT_SECRET = "bench-only-audit-secret-0123456789"


@dataclass(frozen=True)
class BenchDeployment:
    state: Path
    token: str
    token_sha256: str

    @property
    def keys_dir(self) -> Path:
        return self.state / "keys"

    @classmethod
    def create(cls, state: Path) -> BenchDeployment:
        for member in (CLIENT, PROVIDER):
            if not (state / "keys" / f"{member}.key").exists():
                generate_member_key(state / "keys", member)
        token, digest = new_token()
        return cls(state, token, digest)

    def write_config(
        self,
        transport_url: str,
        *,
        node_name: str = "bench-node-1",
        delay_s: float = 0.0,
        slow_services: dict[str, float] | None = None,
    ) -> Path:
        """The node's config file; ``delay_s``: the echo agency's time to answer.
        ``slow_services``: more services of the echo agency (id -> its time to answer), each
        the portal may ask for the benchmark's purpose (the bundle cell's parts)."""
        register_kind(EchoAdapter)  # a node of this process reading the config finds the kind
        config: dict[str, Any] = {
            "node": {
                "name": node_name,
                "hosts": [CLIENT, PROVIDER],
                "keys_dir": str(self.keys_dir),
                "listen": "127.0.0.1:0",
            },
            # the broker URL carries the password: a 0600 file, never the YAML
            "transport": {"url": {"file": str(self._secret("transport.url", transport_url))}},
            "log_level": "INFO",
            "members": {
                CLIENT: {
                    "name": "Public services portal",
                    "public_key": str(self.keys_dir / f"{CLIENT}.pub"),
                    "api_token_sha256": self.token_sha256,
                },
                PROVIDER: {
                    "name": "Benchmark echo agency",
                    "public_key": str(self.keys_dir / f"{PROVIDER}.pub"),
                },
            },
            "services": {
                SERVICE: {
                    "title": "Benchmark echo (trivial in-process provider)",
                    "request": "schemas.residence.ResidenceRegistrationRequest",
                    "response": "schemas.residence.ResidenceRegistration",
                    "adapter": {"kind": "bench-echo", "delay_s": delay_s},
                    "timeout_s": 10,
                }
            },
            "access": [{"client": CLIENT, "service": SERVICE, "purpose": [PURPOSE]}],
            # a 0600 file, as a deployment would keep it; the serving port's public URL comes
            # from BUS_DOCUMENTS__PUBLIC_URL (serve_nodes)
            "audit": {"secret": {"file": str(self._secret("audit.secret", AUDIT_SECRET))}},
            "documents": {"public_url": "http://127.0.0.1"},
        }
        for service, delay in (slow_services or {}).items():
            config["services"][service] = {
                **config["services"][SERVICE],
                "title": f"Benchmark echo answering in {delay * 1000:g} ms",
                "adapter": {"kind": "bench-echo", "delay_s": delay},
            }
            config["access"].append({"client": CLIENT, "service": service, "purpose": [PURPOSE]})
        return write_private(self.state / f"{node_name}.yaml",
                             yaml.safe_dump(config, sort_keys=False))

    def _secret(self, name: str, value: str) -> Path:
        return write_private(self.state / name, value)


BUNDLE_DELAYS_S = (0.010, 0.020, 0.030, 0.040, 0.050)  # the bundle cell's five parts
BUNDLE_SERVICES = {f"{PROVIDER}/echo-{round(d * 1000)}ms/v1": d for d in BUNDLE_DELAYS_S}


def bundle_calls(token: str) -> list[HttpCall]:
    """One bundle asking each of ``BUNDLE_SERVICES`` once (the slowest part takes 50 ms)."""
    parts = [{"service": s, "request": request_body()} for s in BUNDLE_SERVICES]
    return [
        HttpCall(
            path="/v1/bundles",
            headers={
                "Authorization": f"Bearer {token}",
                "X-Bus-Purpose": PURPOSE,
                "X-Bus-User": USER,
                "Content-Type": "application/json",
            },
            body=orjson.dumps({"parts": parts}).decode(),
        )
    ]


def async_calls(token: str) -> list[HttpCall]:
    """The portal's request with ``?mode=async``: answered 202 once recorded and published."""
    [call] = bus_calls(token)
    return [HttpCall(call.path + "?mode=async", call.headers, call.body)]


def bus_calls(token: str) -> list[HttpCall]:
    """The portal's request to the echo service, as the load generator sends it."""
    return [
        HttpCall(
            path=f"/v1/services/{SERVICE}",
            headers={
                "Authorization": f"Bearer {token}",
                "X-Bus-Purpose": PURPOSE,
                "X-Bus-User": USER,
                "Content-Type": "application/json",
            },
            body=orjson.dumps(request_body()).decode(),
        )
    ]


@contextlib.contextmanager
def in_process_node(config: Path, transport_url: str) -> Iterator[str]:
    """One node with its gateway in this process; yields the gateway's URL."""
    settings = load_settings(config)
    configure_logging(settings.log_level, path=config.with_suffix(".log"))
    transport = open_transport(
        transport_url, node=settings.node.name, durable_sync=settings.transport.durable_sync
    )
    node = Node(settings, transport=transport)
    gateway = serve_in_thread(create_app(node), **server_options(settings.http))  # as serve
    try:
        yield gateway.url
    finally:
        gateway.stop()


@contextlib.contextmanager
def queues_removed(url: str, node_names: list[str]) -> Iterator[None]:
    """Delete, on the way out, the quorum queues the bench's nodes made on a shared broker.

    The service's work queue and each node's reply queue are durable: left behind, every run
    would leave queues (and their file handles) on the broker.
    """
    try:
        yield
    finally:
        names = [service_queue(SERVICE), *(reply_queue(n) for n in node_names)]
        with contextlib.suppress(pika.exceptions.AMQPError, OSError):
            connection = pika.BlockingConnection(pika.URLParameters(url))
            try:
                channel = connection.channel()
                for name in names:
                    with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):
                        if channel.is_closed:
                            channel = connection.channel()
                        channel.queue_delete(name)
            finally:
                connection.close()


@contextlib.contextmanager
def serve_nodes(configs: list[Path], *, workers: int = 1) -> Iterator[list[tuple[str, list[int]]]]:
    """One ``python -m bench.serve --workers W`` (``run_bus.py serve`` knowing ``bench-echo``)
    per config; yields (gateway URL, pids) once ready."""

    def launch(config: Path) -> Launch:
        def command(port: int) -> list[str]:
            return [sys.executable, "-m", "bench.serve", "-c", str(config),
                    "--listen", f"127.0.0.1:{port}", "--workers", str(workers)]

        def public_url(port: int) -> dict[str, str]:  # the documents' links point at the node
            return {"BUS_DOCUMENTS__PUBLIC_URL": f"http://127.0.0.1:{port}"}

        return Launch(command, config.with_suffix(".log"), public_url)

    with served([launch(c) for c in configs]) as nodes:
        yield nodes


@contextlib.contextmanager
def demo_stack(state: Path) -> Iterator[DemoStack]:
    """The demo's agencies and node (embedded transport), logging like ``run_bus.py demo``."""
    stack = start_stack(state)
    configure_logging("INFO", path=state / "node.log")
    try:
        yield stack
    finally:
        stack.stop()


def demo_calls(token: str) -> list[HttpCall]:
    """Both demo services in turn (residence over REST, property over SQL), all answered 200."""
    from demo.data import PEOPLE
    from demo.scenario import PROPERTY, RESIDENCE

    common = {
        "Authorization": f"Bearer {token}",
        "X-Bus-User": USER,
        "Content-Type": "application/json",
    }
    residents = [p for p in PEOPLE if p.residence is not None]
    owners = [p for p in PEOPLE if p.properties]
    calls = []
    for resident, owner in zip(residents, owners, strict=False):
        calls.append(
            HttpCall(
                f"/v1/services/{RESIDENCE}",
                {**common, "X-Bus-Purpose": "child-benefit"},
                orjson.dumps({"pinfl": resident.pinfl}).decode(),
            )
        )
        calls.append(
            HttpCall(
                f"/v1/services/{PROPERTY}",
                {**common, "X-Bus-Purpose": "housing-subsidy"},
                orjson.dumps({"pinfl": owner.pinfl}).decode(),
            )
        )
    return calls
