"""RabbitMQ restarts under load; the node processes reconnect by themselves and lose nothing.

What runs: a gateway node process hosting only the portal and a provider node process hosting
the agency members, on the broker; the demo residence registry in this process, answering each
lookup after 20 ms. Portal clients (threads of this process) keep asking through the gateway's
HTTP API while the broker's application is stopped (``rabbitmqctl stop_app``: every connection
is closed, the port refuses), left down for three times the service's deadline, and started again
(``start_app``, in a ``finally``: a failing test never leaves the broker down). Requests go
through HTTP here because what the caller gets back (status, problem document, how long it
waited) is the property: every request must come back, as an answer or as a clear refusal, and
no later than its deadline. A probe asks the gateway's ``/health/live`` all along: the gateway
must keep serving while its broker is away.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from demo.data import AZIZ, DILNOZA, JASUR, MALIKA
from demo.scenario import RESIDENCE
from demo.servers import serve_in_thread
from tests.faults.nodes import BrokerDeployment, SlowAgency

pytestmark = [
    pytest.mark.rabbitmq,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl"),
]

CLIENTS = 4
SERVICE_TIMEOUT_S = 3.0
# Requests in flight when the broker stops end by their deadline; the ones sent next must still
# expire before it is back: three deadlines leave a margin of one.
DOWN_S = 3 * SERVICE_TIMEOUT_S
# The longest a caller may wait: the deadline, plus the time to get the request into the
# gateway and the answer out of it on a busy 2-core machine.
BOUND_S = SERVICE_TIMEOUT_S + 3
PEOPLE = [AZIZ, DILNOZA, JASUR, MALIKA]
REFUSALS = {(503, "bus-unavailable"), (504, "deadline-exceeded")}


@dataclass
class Asked:
    pinfl: str
    sent: float
    done: float
    status: int | None = None
    code: str | None = None
    message_id: str | None = None
    error: str | None = None  # no HTTP answer at all (a hang ends as the client's timeout)


class Portal:
    """Portal clients asking in a loop, recording every request and how it ended, and a probe
    of the gateway's liveness endpoint."""

    def __init__(self, gateway_url: str, service: str, token: str) -> None:
        self.url = f"{gateway_url}/v1/services/{service}"
        self.health_url = f"{gateway_url}/health/live"
        self.headers = {
            "Authorization": f"Bearer {token}",
            "X-Bus-Purpose": "child-benefit",
            "X-Bus-User": "officer-17",
        }
        self.asked: list[Asked] = []
        self.health: list[tuple[float, float]] = []  # (sent, seconds it took)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def ask(self, client: httpx.Client, pinfl: str) -> Asked:
        sent = time.monotonic()
        try:
            r = client.post(self.url, json={"pinfl": pinfl}, headers=self.headers)
        except httpx.HTTPError as exc:
            return Asked(pinfl, sent, time.monotonic(), error=f"{type(exc).__name__}: {exc}")
        asked = Asked(pinfl, sent, time.monotonic(), r.status_code)
        asked.message_id = r.headers.get("X-Bus-Message-Id")
        if r.status_code == 200:
            asked.code = "ok" if r.json()["payload"]["pinfl"] == pinfl else "another person"
        elif r.headers.get("content-type", "").startswith("application/problem+json"):
            asked.code = r.json().get("code")
        return asked

    def _ask_in_a_loop(self, n: int) -> None:
        with httpx.Client(timeout=BOUND_S + 30) as client:
            while not self._stop.is_set():
                self.asked.append(self.ask(client, PEOPLE[n % len(PEOPLE)].pinfl))
                n += 1

    def _probe(self) -> None:
        with httpx.Client(timeout=BOUND_S + 30) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    client.get(self.health_url)
                finally:
                    self.health.append((sent, time.monotonic() - sent))
                self._stop.wait(0.2)

    def start(self) -> None:
        targets = [(self._probe, ())] + [(self._ask_in_a_loop, (n,)) for n in range(CLIENTS)]
        for target, args in targets:
            thread = threading.Thread(target=target, args=args, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(BOUND_S + 40)
            assert not thread.is_alive(), "a portal client is stuck"

    def wait_for(self, answers: int, *, sent_after: float, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while sum(a.sent >= sent_after and a.status == 200 for a in self.asked) < answers:
            assert time.monotonic() < deadline, f"fewer than {answers} answers in {timeout_s}s"
            time.sleep(0.05)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def _wait_for_broker(timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        probe = subprocess.run(
            ["rabbitmq-diagnostics", "-q", "check_port_connectivity"],
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
        if probe.returncode == 0:
            return
        assert time.monotonic() < deadline, "RabbitMQ did not come back"
        time.sleep(0.5)


def _dropped_replies(log: Path) -> int:
    """Replies the gateway got for requests nobody waited for any more (it logs each)."""
    dropped = 0
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "answers no waiting request" in str(record.get("msg")):
            dropped += 1
    return dropped


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[BrokerDeployment, SlowAgency]]:
    agency = SlowAgency(tmp_path / "residence.db", 0.02)
    with serve_in_thread(agency, timeout_graceful_shutdown=1) as server:
        bus = BrokerDeployment(
            tmp_path,
            prefix="test-br",
            residence_url=server.url,
            services={RESIDENCE: {"timeout_s": SERVICE_TIMEOUT_S}},
        )
        try:
            yield bus, agency
        finally:
            bus.close()


@pytest.mark.timeout(180)
def test_nodes_ride_out_a_broker_restart_and_lose_nothing(
    deployment: tuple[BrokerDeployment, SlowAgency],
) -> None:
    """``rabbitmqctl stop_app``, down for three deadlines, ``start_app``, with portal clients
    asking through the gateway node all along.

    Every request gets an HTTP answer, none later than its deadline (plus a margin): the signed
    answer about the person asked for, or a problem document, 503 ``bus-unavailable`` or 504
    ``deadline-exceeded``; those sent while the broker was down end that way. The gateway keeps
    answering ``/health/live`` meanwhile. After the restart the same two processes (same pids,
    never restarted) answer every request again: their publishers, consumers and reply
    consumers reconnected on their own. Nothing is left in the service queue.
    """
    bus, agency = deployment
    gateway = bus.start("gw", ["portal"], wait=False)
    provider = bus.start("provider", ["residence-registry", "cadastre"], wait=False)
    gateway.wait_ready()
    provider.wait_ready()
    pids = (gateway.pid, provider.pid)
    portal = Portal(gateway.url, bus.residence, bus.token)

    portal.start()
    try:
        portal.wait_for(20, sent_after=0, timeout_s=30)
        stopping = time.monotonic()
        try:
            _rabbitmqctl("stop_app")
            down = time.monotonic()
            time.sleep(DOWN_S)  # the clients keep asking
        finally:
            starting = time.monotonic()
            _rabbitmqctl("start_app")
            _wait_for_broker()
        up = time.monotonic()
        portal.wait_for(CLIENTS * 5, sent_after=up, timeout_s=60)
        recovered = time.monotonic()
    finally:
        portal.stop()

    # After the restart, through the same processes: every request is answered.
    with httpx.Client(timeout=BOUND_S + 30) as client:
        after = [portal.ask(client, PEOPLE[i % len(PEOPLE)].pinfl) for i in range(20)]
    assert [a.code for a in after] == ["ok"] * len(after), after
    assert gateway.alive and provider.alive and (gateway.pid, provider.pid) == pids
    time.sleep(0.5)  # let the provider settle what it answered last
    depth = bus.queue_depth(bus.service_queues[0])
    dead = Counter(f"{d.queue.partition('.')[0]}:{d.reason}" for d in bus.dead_letters())

    asked = [*portal.asked, *after]
    outcomes = Counter((a.status, a.code) for a in asked)
    # Sent while the broker was down, with a deadline that passed before it was started again:
    # these cannot have been answered, they must have been refused.
    while_down = [a for a in asked if a.sent >= down and a.sent + SERVICE_TIMEOUT_S < starting]
    slowest = max(a.done - a.sent for a in asked)
    frozen = max(seconds for _, seconds in portal.health)
    print(
        f"\nstop_app {down - stopping:.1f}s, down {DOWN_S:.0f}s, start_app until the port"
        f" answered {up - starting:.1f}s, all clients answered again {recovered - up:.1f}s"
        f" later; {len(asked)} requests, {len(while_down)} sent and expired while down;"
        f" outcomes {dict(outcomes)}; slowest {slowest:.1f}s;"
        f" slowest /health/live {frozen:.2f}s; agency calls {agency.calls};"
        f" replies dropped by the gateway {_dropped_replies(gateway.log_path)};"
        f" dead letters {dict(dead)}"
    )

    hung = [a for a in asked if a.error is not None]
    assert not hung, f"{len(hung)} requests got no HTTP answer: {hung[:3]}"
    assert set(outcomes) <= {(200, "ok"), *REFUSALS}, outcomes
    assert slowest <= BOUND_S, f"a caller waited {slowest:.1f}s for a {SERVICE_TIMEOUT_S}s deadline"
    assert frozen <= 2.0, f"the gateway did not answer /health/live for {frozen:.1f}s"
    assert while_down, "no request was sent and expired while the broker was down"
    assert all((a.status, a.code) in REFUSALS for a in while_down)
    answered = [a.message_id for a in asked if a.status == 200]
    assert len(answered) == len(set(answered))  # one answer per request, each its own
    assert depth == 0
