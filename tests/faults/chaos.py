"""A chaos run: asynchronous requests over 2 gateway and 2 provider node processes on RabbitMQ,
while providers and a gateway are killed (-9), the agency is down for a while and, optionally,
the broker restarts. It reports what a user of the bus would call lost, what the agency executed
twice, and every 504 that carries no message id.

Full size (issue 12's acceptance; it restarts the broker, so give it a broker of its own — or
run it only when nothing else uses the shared one, e.g. no other ``pytest``). ``BUS_TEST_BROKER``
(``host:port``) and ``RABBITMQ_NODENAME`` (what ``rabbitmqctl`` restarts) point it at a private
broker (``tests/live.py``)::

    BUS_TEST_BROKER=127.0.0.1:5673 RABBITMQ_NODENAME=chaos@localhost \\
        .venv/bin/python -m tests.faults.chaos --requests 10000 --provider-kills 5 \\
        --gateway-kills 1 --outage-s 30 --broker-restart

CI size: ``tests/faults/test_chaos.py`` (marked ``slow`` and ``rabbitmq``: 300 requests, one
provider kill, one gateway kill, a 2 s outage, no broker restart)::

    .venv/bin/python -m pytest -q tests/faults/test_chaos.py

What runs (``tests/faults/nodes.py``): the nodes are ``run_bus.py serve`` processes of one
``BrokerDeployment`` (its own tag, its own vhost when run as a script), gateways ``gw-a`` and
``gw-b`` hosting the portal, providers ``provider-a`` and ``provider-b`` hosting the residence
registry and the cadastre; the agency is the demo residence registry in this process, answering
after ``agency_delay_s`` and ``503`` during the outage, keeping its own journal of the
``X-Bus-Message-Id`` of every lookup it served. Requests are the residence service asked with
``?mode=async`` (every ``sync_every``-th synchronously), sent by ``concurrency`` threads to the
gateways in turn (a gateway that is down is skipped; a request whose POST failed is sent again to
the other one as a new request). Faults come at fixed fractions of the requests sent: the outage
at 30 %, the gateway kill at 50 %, the broker restart at 70 %, provider kills spread evenly; a
killed node is started again at once (as a supervisor would). Once all are sent, every accepted
request is polled until it is finished or ``settle_s`` has passed.

Counted:

* ``lost``: accepted asynchronous requests that did not end with 200 (still pending, or an
  error) — ``errors`` breaks those down by status;
* ``executed_twice``: message ids the agency's journal holds more than once;
  ``reexecuted_in_audit``: the ids the audit log shows answered by a worker that executed the
  request again (side ``provider:re-executed``: it took over the lease of a worker that stopped
  between the agency call and recording the answer — a killed provider); and
  ``executed_twice_unexplained``: ids executed twice that the audit does *not* show as a
  re-execution — the ones that would be a bug (the nodes share the answered-request memory and
  its leases in the node state, ``bus.exchange.leases``). ``in_flight_at_kills``: the requests
  the killed providers' workers were on (their ``bus_provider_inflight_requests`` just before
  the kill), the most a kill can make run again; ``answered_twice_in_audit``: ids with two
  provider ``ok`` entries (``provider`` or ``provider:re-executed``) in the audit log;
* ``lookups_unknown_to_the_client``: requests the agency served whose POST failed (the gateway
  was killed after publishing it, before answering 202): not lost to the bus, unknown to the
  client, which sent a new request instead;
* ``http_504`` and ``http_504_without_id``: synchronous 504s and asynchronous results with
  status 504, and those of them whose problem carries no ``message_id``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pika
from starlette.types import Receive, Scope, Send

from demo import residence_registry
from demo.data import AZIZ, DILNOZA, JASUR, MALIKA
from demo.scenario import RESIDENCE
from demo.servers import serve_in_thread
from tests.faults.chaos_report import Plan, Report, count_audit
from tests.faults.nodes import AMQP, BrokerDeployment, NodeProcess

__all__ = ["ChaosAgency", "Plan", "Report", "run"]

PEOPLE = [AZIZ, DILNOZA, JASUR, MALIKA]  # all known to the residence registry
GATEWAYS = ("gw-a", "gw-b")
PROVIDERS = ("provider-a", "provider-b")
PROVIDER_HOSTS = ["residence-registry", "cadastre"]


class ChaosAgency:
    """The demo residence registry, answering after ``delay_s``, ``503`` while ``down``; its
    journal of message ids is ``journal`` (the registry's own ``app.state.message_ids``)."""

    def __init__(self, db: Path, delay_s: float) -> None:
        self.app = residence_registry.create_app(db)
        self.delay_s = delay_s
        self.down = False
        self.in_flight = 0

    @property
    def journal(self) -> list[str | None]:
        return list(self.app.state.message_ids)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        if self.down:
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"down for maintenance"})
            return
        self.in_flight += 1
        try:
            await asyncio.sleep(self.delay_s)
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class _Nodes:
    """The running node processes by role; a killed one is started again."""

    def __init__(self, bus: BrokerDeployment) -> None:
        self.bus = bus
        self._lock = threading.Lock()
        self._running: dict[str, NodeProcess] = {}
        self._up: dict[str, bool] = {}

    def start(self, role: str, hosts: list[str]) -> NodeProcess:
        process = self.bus.start(role, hosts, wait=False)
        with self._lock:
            self._running[role] = process
        return process

    def ready(self, role: str) -> None:
        with self._lock:
            process = self._running[role]
        process.wait_ready(180)  # a loaded machine (shared CI) starts nodes slowly
        with self._lock:
            self._up[role] = True

    def in_flight(self, role: str) -> int:
        """The deliveries the node's provider workers are on now (its ``/metrics``)."""
        with self._lock:
            url = self._running[role].url
        try:
            text = httpx.get(f"{url}/metrics", timeout=5).text
        except httpx.HTTPError:
            return 0
        return sum(
            int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
            if line.startswith("bus_provider_inflight_requests{")
        )

    def kill_and_restart(self, role: str, hosts: list[str]) -> None:
        with self._lock:
            self._up[role] = False
            process = self._running[role]
        process.kill()
        self.start(role, hosts)
        self.ready(role)

    def urls(self, roles: tuple[str, ...]) -> list[str]:
        with self._lock:
            return [self._running[r].url for r in roles if self._up.get(r)]


def _restart_broker() -> None:
    ctl = shutil.which("rabbitmqctl") or "rabbitmqctl"
    subprocess.run([ctl, "stop_app"], check=True, capture_output=True, timeout=120)
    time.sleep(3)
    subprocess.run([ctl, "start_app"], check=True, capture_output=True, timeout=120)
    give_up = time.monotonic() + 120
    while True:
        try:
            pika.BlockingConnection(pika.URLParameters(AMQP)).close()
            return
        except pika.exceptions.AMQPError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.5)


def _faults(plan: Plan, nodes: _Nodes, agency: ChaosAgency, report: Report) -> list[
    tuple[int, Callable[[], None]]
]:
    """(after how many requests sent, what to do), in order."""
    n = plan.requests
    faults: list[tuple[int, Callable[[], None]]] = []

    def outage() -> None:
        report.faults.append(f"agency down for {plan.outage_s:g} s")
        agency.down = True
        time.sleep(plan.outage_s)
        agency.down = False

    def kill_provider(role: str) -> Callable[[], None]:
        def kill() -> None:
            working = nodes.in_flight(role)
            report.in_flight_at_kills += working
            report.faults.append(f"kill -9 {role} ({working} requests in its workers, "
                                 f"{agency.in_flight} in the agency)")
            nodes.kill_and_restart(role, PROVIDER_HOSTS)

        return kill

    def kill_gateway(role: str) -> Callable[[], None]:
        def kill() -> None:
            report.faults.append(f"kill -9 {role}")
            nodes.kill_and_restart(role, ["portal"])

        return kill

    def broker() -> None:
        report.faults.append("broker restart (rabbitmqctl stop_app/start_app)")
        _restart_broker()

    if plan.outage_s > 0:
        faults.append((int(n * 0.3), outage))
    for i in range(plan.gateway_kills):
        faults.append((int(n * (0.5 + 0.1 * i)), kill_gateway(GATEWAYS[(i + 1) % 2])))
    if plan.broker_restart:
        faults.append((int(n * 0.7), broker))
    for i in range(plan.provider_kills):
        at = int(n * (i + 1) / (plan.provider_kills + 1))
        faults.append((at, kill_provider(PROVIDERS[i % 2])))
    return sorted(faults, key=lambda f: f[0])


def _has_id(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return bool(isinstance(body, dict) and body.get("message_id")
                and response.headers.get("X-Bus-Message-Id"))


class _Driver:
    def __init__(self, plan: Plan, bus: BrokerDeployment, nodes: _Nodes, report: Report) -> None:
        self.plan = plan
        self.service = bus.residence
        self.headers = {"Authorization": f"Bearer {bus.token}", "X-Bus-User": "chaos",
                        "X-Bus-Purpose": "child-benefit"}
        self.nodes = nodes
        self.report = report
        self.lock = threading.Lock()
        self.accepted: list[str] = []
        self.known: set[str] = set()  # every message id a gateway told the client
        self.turn = itertools.count()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []

    def _client(self) -> httpx.Client:
        """This thread's client: one connection pool per thread, not a new client (and SSL
        context) per request, which grew the driver to gigabytes over a full-size run."""
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(timeout=self.plan.timeout_s + 10)
            with self.lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        with self.lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    def _gateway(self, avoid: str | None = None) -> str:
        while True:
            urls = [u for u in self.nodes.urls(GATEWAYS) if u != avoid] or self.nodes.urls(GATEWAYS)
            if urls:
                return urls[next(self.turn) % len(urls)]
            time.sleep(0.05)

    def send(self, i: int) -> None:
        sync = self.plan.sync_every > 0 and i % self.plan.sync_every == self.plan.sync_every - 1
        person = PEOPLE[i % len(PEOPLE)]
        url = self._gateway()
        for _ in range(20):
            try:
                r = self._client().post(
                    f"{url}/v1/services/{self.service}",
                    params=None if sync else {"mode": "async"},
                    json={"pinfl": person.pinfl}, headers=self.headers,
                    timeout=self.plan.timeout_s + 10,
                )
            except httpx.HTTPError:
                with self.lock:
                    self.report.post_failures += 1
                url = self._gateway(avoid=url)
                continue
            with self.lock:
                self.report.sent += 1
                if r.headers.get("X-Bus-Message-Id"):
                    self.known.add(r.headers["X-Bus-Message-Id"])
                if sync:
                    self.report.sync[r.status_code] += 1
                    if r.status_code == 504:
                        self.report.http_504 += 1
                        self.report.http_504_without_id += not _has_id(r)
                elif r.status_code == 202:
                    self.report.accepted += 1
                    self.accepted.append(r.headers["X-Bus-Message-Id"])
                else:
                    self.report.errors[f"submit {r.status_code}"] += 1
            return
        raise RuntimeError("no gateway took the request in 20 tries")

    def settle(self) -> None:
        """Poll every accepted request until finished, or ``settle_s`` passed."""
        pending = set(self.accepted)
        give_up = time.monotonic() + self.plan.settle_s
        with ThreadPoolExecutor(self.plan.concurrency) as pool:
            while pending and time.monotonic() < give_up:
                results = list(pool.map(self._poll, sorted(pending)))
                for message_id, response in results:
                    if response is None or response.status_code in (202, 429):
                        continue  # not finished yet, or asked to poll more slowly
                    pending.discard(message_id)
                    if response.status_code == 200:
                        self.report.ok += 1
                        continue
                    code = response.json().get("code", "?") if response.content else "?"
                    self.report.errors[f"{response.status_code} {code}"] += 1
                    if response.status_code == 504:
                        self.report.http_504 += 1
                        self.report.http_504_without_id += not _has_id(response)
                if pending:
                    time.sleep(1.0)
        self.report.pending = len(pending)

    def _poll(self, message_id: str) -> tuple[str, httpx.Response | None]:
        try:
            r = self._client().get(f"{self._gateway()}/v1/messages/{message_id}",
                                   headers=self.headers, timeout=10)
        except httpx.HTTPError:
            return message_id, None
        return message_id, r


def run(plan: Plan, state: Path, *, say: Callable[[str], None] = print) -> Report:
    """Run ``plan`` with its files in ``state``; the broker (``tests.live.AMQP_URL``'s vhost)
    must exist."""
    report = Report(plan)
    started = time.monotonic()
    agency = ChaosAgency(state / "residence.db", plan.agency_delay_s)
    with serve_in_thread(agency, timeout_graceful_shutdown=1) as server:
        bus = BrokerDeployment(state, prefix="chaos", residence_url=server.url, services={
            RESIDENCE: {
                "timeout_s": plan.timeout_s,
                "retry": {"attempts": 2, "backoff": "fixed", "max_delay_s": 0.2,
                          "redeliveries": 8, "redelivery_delay_s": 0.5},
            },
        })
        nodes = _Nodes(bus)
        try:
            for role in GATEWAYS:
                nodes.start(role, ["portal"])
                bus.extra_queues.append(f"reply.{bus.tag}-{role}.async")
            for role in PROVIDERS:
                nodes.start(role, PROVIDER_HOSTS)
            for role in (*GATEWAYS, *PROVIDERS):
                nodes.ready(role)
            say(f"{len(GATEWAYS) + len(PROVIDERS)} nodes ready in "
                f"{time.monotonic() - started:.1f} s; sending {plan.requests} requests")
            driver = _Driver(plan, bus, nodes, report)
            faults = _faults(plan, nodes, agency, report)
            fault_threads: list[threading.Thread] = []
            with ThreadPoolExecutor(plan.concurrency) as pool:
                sending = [pool.submit(driver.send, i) for i in range(plan.requests)]
                for at, fault in faults:
                    while report.sent < at and not all(f.done() for f in sending):
                        time.sleep(0.01)
                    thread = threading.Thread(target=fault, daemon=True)
                    thread.start()
                    fault_threads.append(thread)
                for future in sending:
                    future.result()
            for thread in fault_threads:
                thread.join(600)
            say(f"sent in {time.monotonic() - started:.1f} s; waiting for the results")
            driver.settle()
            driver.close()
            journal = collections.Counter(i for i in agency.journal if i)
            report.lookups = len(agency.journal)
            report.executed_twice = sum(1 for i, c in journal.items() if i and c > 1)
            report.lookups_unknown_to_the_client = sum(
                1 for i in journal if i and i not in driver.known
            )
            count_audit(bus.state / "gw-a.yaml", report, journal)
            report.dead_letters = len(bus.dead_letters())
        finally:
            bus.close()
    report.duration_s = round(time.monotonic() - started, 1)
    return report


@contextlib.contextmanager
def _own_vhost() -> Iterator[None]:
    from tests.live import create_vhost, delete_vhost

    create_vhost()
    try:
        yield
    finally:
        delete_vhost()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=Plan.requests)
    parser.add_argument("--provider-kills", type=int, default=Plan.provider_kills)
    parser.add_argument("--gateway-kills", type=int, default=Plan.gateway_kills)
    parser.add_argument("--outage-s", type=float, default=Plan.outage_s)
    parser.add_argument("--broker-restart", action="store_true")
    parser.add_argument("--sync-every", type=int, default=Plan.sync_every)
    parser.add_argument("--concurrency", type=int, default=Plan.concurrency)
    parser.add_argument("--state", type=Path, default=None, help="folder for the run's files")
    args = parser.parse_args()
    plan = Plan(requests=args.requests, provider_kills=args.provider_kills,
                gateway_kills=args.gateway_kills, outage_s=args.outage_s,
                broker_restart=args.broker_restart, sync_every=args.sync_every,
                concurrency=args.concurrency)
    with _own_vhost(), contextlib.ExitStack() as stack:
        state = args.state or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        report = run(plan, state)
    print(json.dumps(report.summary(), indent=2, default=str))


if __name__ == "__main__":
    main()
