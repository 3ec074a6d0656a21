"""Two provider nodes on the broker; one is killed (SIGKILL) with 1,000 requests in flight.

What runs: two ``run_bus.py serve`` processes hosting the agency members (``provider-a`` and
``provider-b``), both consuming the one quorum queue of the residence service, and the demo
residence registry in this process, answering each lookup after 40 ms so that both nodes keep
their whole prefetch window busy. The asking side is this test process: a ``Node`` built from
the same configuration hosting only the portal (exactly what a gateway node runs: the real
``Exchanger``, ``Seal`` and ``RabbitTransport``), without the HTTP layer in front. That makes
1,000 requests in flight cheap, and lets the test count every reply that reaches the asking
side per correlation id, which HTTP would hide.

Why kill -9 and not a stop: the killed node gets no chance to settle anything, so whatever it
had been delivered and not acked (its prefetch window, some of it inside agency calls) must come
back from RabbitMQ to the survivor, and a reply it published but never acked is answered again
there: a duplicate the asking side must drop.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from bus.config.loader import load_settings
from bus.core.envelope import Envelope
from bus.core.errors import BusError
from bus.exchange.client import Outcome
from bus.node.wiring import Node
from bus.transport import Delivery, Message, replies
from bus.transport.rabbitmq.transport import RabbitTransport
from demo.data import AZIZ, DILNOZA, JASUR, MALIKA
from demo.scenario import RESIDENCE
from demo.servers import serve_in_thread
from schemas import ResidenceRegistrationRequest
from tests.faults.nodes import AMQP, BrokerDeployment, SlowAgency

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

REQUESTS = 1000
AGENCY_DELAY_S = 0.04
PEOPLE = [AZIZ, DILNOZA, JASUR, MALIKA]  # all known to the residence registry


class CountingTransport(RabbitTransport):
    """The asking side's transport, counting what it publishes and every reply that reaches it
    (per correlation id, before the transport decides whether anyone still waits for it)."""

    def __init__(self, url: str, *, node: str) -> None:
        super().__init__(url, node=node)
        self.published = 0
        self.replies: collections.Counter[str] = collections.Counter()
        self._count_lock = threading.Lock()

    def request(self, queue: str, message: Message) -> Future[Message]:
        future = super().request(queue, message)
        with self._count_lock:
            self.published += 1
        return future

    def _on_reply(self, delivery: Delivery) -> None:
        with self._count_lock:
            self.replies[delivery.message.correlation_id or ""] += 1
        super()._on_reply(delivery)


class DroppedReplies(logging.Handler):
    """Counts the transport's "reply … answers no waiting request; dropped" records."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "answers no waiting request; dropped" in record.getMessage():
            self.count += 1


def _answered(log: Path) -> list[dict[str, object]]:
    """The provider's "answered" log records, and "answered from the record" (a copy of a
    request whose answer another worker recorded, then died before sending it); a killed
    node's last line may be cut short."""
    records = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("msg") in ("answered",
                                                              "answered from the record"):
            records.append(record)
    return records


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[BrokerDeployment, SlowAgency]]:
    agency = SlowAgency(tmp_path / "residence.db", AGENCY_DELAY_S)
    with serve_in_thread(agency, timeout_graceful_shutdown=1) as server:
        bus = BrokerDeployment(
            tmp_path,
            prefix="test-mn",
            residence_url=server.url,
            services={
                RESIDENCE: {
                    "timeout_s": 60,
                    "retry": {"attempts": 1, "redeliveries": 2, "redelivery_delay_s": 0.2},
                }
            },
        )
        try:
            yield bus, agency
        finally:
            bus.close()


@pytest.mark.timeout(180)
def test_killing_one_of_two_provider_nodes_loses_and_doubles_nothing(
    deployment: tuple[BrokerDeployment, SlowAgency],
) -> None:
    """kill -9 one of two provider nodes while 1,000 requests are in flight.

    Afterwards every request is answered (the survivor takes over, RabbitMQ redelivers what
    the killed node held unacked) or dead-lettered with a reason; nothing is lost
    (answered + dead-lettered == 1000); no request is completed twice: the test counts the
    replies per correlation id and checks that each duplicate was dropped by the asking
    transport, not delivered to the caller. Each answer is also checked to be about the person
    asked for (replies are matched to their requests).
    """
    bus, agency = deployment
    started = time.monotonic()
    provider_a = bus.start("provider-a", ["residence-registry", "cadastre"], wait=False)
    provider_b = bus.start("provider-b", ["residence-registry", "cadastre"], wait=False)
    provider_a.wait_ready()
    provider_b.wait_ready()
    ready_s = time.monotonic() - started

    asker_name, asker_config = bus.write_node("asker", ["portal"])
    transport = CountingTransport(AMQP, node=asker_name)
    bus.extra_queues.append(f"reply.{asker_name}")
    node = Node(load_settings(asker_config), transport=transport)
    dropped = DroppedReplies()
    transport_log = replies.log  # where the transport says it dropped a reply
    level = transport_log.level
    transport_log.setLevel(logging.INFO)
    transport_log.addHandler(dropped)
    try:
        node.start()
        assert node.exchanger is not None
        exchanger = node.exchanger
        route = node.router.route(bus.residence)

        envelopes: list[Envelope] = []
        for i in range(REQUESTS):
            request = ResidenceRegistrationRequest(pinfl=PEOPLE[i % len(PEOPLE)].pinfl)
            envelopes.append(
                exchanger.build(
                    route, request, client="portal", purpose="child-benefit", user="officer-17"
                )
            )
        results: dict[str, Outcome | BaseException] = {}

        def ask_all() -> None:  # on one event loop, as the gateway does
            async def run() -> list[Outcome | BaseException]:
                asks = [exchanger.ask(route, envelope) for envelope in envelopes]
                return await asyncio.gather(*asks, return_exceptions=True)

            for envelope, result in zip(envelopes, asyncio.run(run()), strict=True):
                results[envelope.id] = result

        asker = threading.Thread(target=ask_all, daemon=True)
        asking = time.monotonic()
        asker.start()

        # Kill provider-a once everything is published and both nodes are busy answering.
        deadline = time.monotonic() + 60
        while transport.published < REQUESTS or sum(transport.replies.values()) < 50:
            assert time.monotonic() < deadline, f"only {transport.published} published"
            time.sleep(0.005)
        answered_at_kill = sum(transport.replies.values())
        in_agency_at_kill = agency.in_flight
        provider_a.kill()
        killed_at = time.monotonic()

        asker.join(120)
        assert not asker.is_alive(), "requests still unanswered after 2 minutes"
        done = time.monotonic()
        # Replies the killed node published but never acked are answered again by the
        # survivor; give those duplicates a moment to arrive before counting.
        time.sleep(1.0)
        depth = transport.queue_depth(route.queue)
        dead = {
            d.message.message_id: d.reason
            for d in transport.dead_letters(100_000)
            if d.queue == route.queue
        }
    finally:
        transport_log.removeHandler(dropped)
        transport_log.setLevel(level)
        node.stop()
        provider_b.stop()

    ids = [e.id for e in envelopes]
    ok = {i for i in ids if isinstance(results.get(i), Outcome)}
    refused = {i: r for i, r in results.items() if isinstance(r, BaseException)}
    lost = [i for i in ids if i not in ok and i not in dead]
    duplicates = sum(n - 1 for n in transport.replies.values() if n > 1)
    by_a = _answered(bus.state / "provider-a.log")
    by_b = _answered(bus.state / "provider-b.log")
    redelivered_to_b = [r for r in by_b if int(str(r.get("attempt", 1))) > 1]
    print(
        f"\nnodes ready in {ready_s:.1f}s; {REQUESTS} published; killed provider-a after"
        f" {killed_at - asking:.2f}s with {REQUESTS - answered_at_kill} in flight"
        f" ({in_agency_at_kill} inside agency calls); all done {done - killed_at:.2f}s later;"
        f" answered: {len(ok)} ok, {len(refused)} refused, {len(dead)} dead-lettered;"
        f" provider-a answered {len(by_a)}, provider-b {len(by_b)}"
        f" ({len(redelivered_to_b)} redelivered); agency calls {agency.calls};"
        f" duplicate replies {duplicates} (dropped: {dropped.count})"
    )

    assert len(results) == REQUESTS
    assert not lost, f"{len(lost)} requests neither answered nor dead-lettered"
    assert len(ok) + len(dead) == REQUESTS
    for message_id, error in refused.items():  # only ever with its dead letter and reason
        assert message_id in dead, f"{message_id} refused with {error!r} and not dead-lettered"
        assert isinstance(error, BusError) and dead[message_id]
    for envelope in envelopes:
        outcome = results[envelope.id]
        if isinstance(outcome, Outcome):
            assert outcome.envelope.correlation == envelope.id
            assert outcome.envelope.payload["pinfl"] == envelope.payload["pinfl"]

    # Every reply that arrived is for one of our requests; each request was completed by its
    # first reply, and every further reply for it was dropped by the asking transport.
    assert set(transport.replies) <= set(ids)
    assert all(transport.replies[i] >= 1 for i in ok)
    assert dropped.count == duplicates

    # The kill happened mid-flow: provider-a had answered some, provider-b the rest, including
    # what provider-a held unacked when it died (redelivered by RabbitMQ: attempt > 1).
    assert by_a and by_b
    assert redelivered_to_b, "nothing provider-a held was redelivered to provider-b"
    assert {str(r["message_id"]) for r in by_a + by_b} >= ok
    assert depth == 0
