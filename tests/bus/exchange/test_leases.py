"""Provider workers sharing a node state: one execution of a request at a time.

Two ``ProviderWorker``s — two nodes, or two processes of one — over one state file, each with
its own replay guard, fed the same delivered request (what a broker redelivery after a lost ack
or a second consumer produces). The adapter counts its calls and can be held mid-call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest

from adapters import AdapterOptions, Deadline
from bus.cli.app import DEMO_MEMBERS, new_token
from bus.config.loader import load_settings
from bus.core.envelope import Envelope, Kind
from bus.core.errors import BusUnavailable
from bus.core.replay import ReplayGuard
from bus.exchange.client import Exchanger
from bus.exchange.leases import Leases
from bus.exchange.provider import ProviderWorker
from bus.node.wiring import Node
from bus.ops.metrics import BusMetrics
from bus.state import NodeState, open_state
from bus.transport import Message, Transport
from demo import cadastre
from demo.data import AZIZ
from demo.scenario import PROPERTY, write_config
from schemas import PropertyOwnership, PropertyOwnershipRequest, SharedRequest, SharedResponse
from signing import generate_member_key
from tests.bus.exchange.deliveries import RecordedDelivery


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return time.time() + self.now  # real time (envelopes are dated now), moved on at will


class CountingAdapter:
    kind: ClassVar[str] = "counting"
    options_model: ClassVar[type[AdapterOptions]] = AdapterOptions

    def __init__(self) -> None:
        self.calls = 0
        self.entered = threading.Event()
        self.go_on = threading.Event()
        self.go_on.set()

    def call(self, request: SharedRequest, deadline: Deadline) -> SharedResponse:
        self.calls += 1
        self.entered.set()
        assert self.go_on.wait(10)
        return PropertyOwnership(pinfl=AZIZ.pinfl, properties=[])

    def close(self) -> None:
        pass


class Replies:
    """The one transport call a worker makes: reply."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def reply(self, request: Message, message: Message) -> None:
        self.sent.append(message)


def FakeDelivery(message: Message) -> RecordedDelivery:
    return RecordedDelivery(message, redelivered=True)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    _, digest = new_token()
    path = write_config(tmp_path, residence_url="http://127.0.0.1:9",
                        cadastre_db=cadastre.create_database(tmp_path / "c.db"),
                        token_sha256=digest)
    node = Node(load_settings(path))
    yield node
    node.audit.close()
    node.state.close()


Make = Callable[..., tuple[ProviderWorker, Replies, BusMetrics]]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(node: Node, tmp_path: Path, clock: Clock) -> Iterator[Make]:
    states: list[NodeState] = []
    route = next(r for r in node.router.routes() if r.service == PROPERTY)

    def make_one(adapter: CountingAdapter) -> tuple[ProviderWorker, Replies, BusMetrics]:
        state = open_state(tmp_path / "shared-state.db", clock=clock)
        states.append(state)
        replies, metrics = Replies(), BusMetrics()
        worker = ProviderWorker(
            route, adapter, seal=node.seal, access=node.access,
            transport=cast(Transport, replies), metrics=metrics, audit=node.audit,
            replay=ReplayGuard(clock=node.seal.clock, store=state),
            leases=Leases(state, holder=f"worker-{len(states)}"),
        )
        return worker, replies, metrics

    yield make_one
    for state in states:
        state.close()


def _request(node: Node) -> Message:
    route = next(r for r in node.router.routes() if r.service == PROPERTY)
    exchanger = Exchanger(seal=node.seal, access=node.access,
                          transport=cast(Transport, Replies()), replay=node.replay)
    envelope = node.seal.sign(exchanger.build(
        route, PropertyOwnershipRequest(pinfl=AZIZ.pinfl), client="portal",
        purpose="housing-subsidy", user="officer-17", timeout_s=60,
    ).addressed(reply_to="reply.portal", node="portal"))  # where answers go, signed
    return Message(body=envelope.to_json(), message_id=envelope.id, reply_to="reply.portal",
                   expires_at=envelope.expires_at.timestamp())


def _count(metrics: BusMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_copy_delivered_while_another_worker_executes_gets_its_answer(
    node: Node, make: Make
) -> None:
    adapter = CountingAdapter()
    adapter.go_on.clear()  # worker A stays inside the agency call until B has come
    a, a_replies, _ = make(adapter)
    b, b_replies, b_metrics = make(adapter)
    message = _request(node)
    first = threading.Thread(target=a.handle, args=(FakeDelivery(message),))
    first.start()
    assert adapter.entered.wait(10)

    def release_a(_: float) -> None:  # B polls the lease: let A finish meanwhile
        adapter.go_on.set()
        first.join(10)

    assert b.leases is not None
    b.leases.sleep = release_a
    copy = FakeDelivery(message)
    b.handle(copy)
    assert adapter.calls == 1  # the agency was asked once
    assert copy.outcome == ("ack", None)
    assert [m.body for m in b_replies.sent] == [m.body for m in a_replies.sent]
    assert Envelope.from_json(b_replies.sent[0].body).kind is Kind.response
    assert _count(b_metrics, "bus_provider_requests_total", service=PROPERTY,
                  outcome="duplicate") == 1


def test_a_copy_whose_lease_still_runs_goes_round_again(node: Node, make: Make) -> None:
    adapter = CountingAdapter()
    b, b_replies, b_metrics = make(adapter)
    message = _request(node)
    assert b.leases is not None
    b.leases.state.claim(f"request/{message.message_id}", "someone-else", lease_s=30,
                         expires_at=message.expires_at or 0)
    b.leases.wait_s = 0  # do not wait in the worker
    copy = FakeDelivery(message)
    b.handle(copy)
    assert copy.outcome == ("retry", "in-progress")
    assert adapter.calls == 0 and b_replies.sent == []
    assert _count(b_metrics, "bus_redeliveries_total", service=PROPERTY,
                  reason="in-progress") == 1


def _left_by_a_killed_worker(worker: ProviderWorker, message: Message, clock: Clock) -> None:
    """A worker took ``message``'s lease and was killed: its lease ran out, the request has
    not."""
    assert worker.leases is not None
    worker.leases.state.claim(f"request/{message.message_id}", "killed-worker", lease_s=30,
                              expires_at=message.expires_at or 0)
    clock.now += 31


def test_a_lease_that_ran_out_is_taken_over_counted_and_audited(
    node: Node, make: Make, clock: Clock
) -> None:
    adapter = CountingAdapter()
    b, b_replies, b_metrics = make(adapter)
    message = _request(node)
    _left_by_a_killed_worker(b, message, clock)
    b.handle(FakeDelivery(message))
    assert adapter.calls == 1
    assert Envelope.from_json(b_replies.sent[0].body).kind is Kind.response
    assert _count(b_metrics, "bus_reexecutions_total", service=PROPERTY) == 1
    entries = [e for e in node.audit.store.entries() if e.message_id == message.message_id]
    assert [e.side for e in entries] == ["provider:re-executed"]
    again = FakeDelivery(message)
    b.handle(again)  # and from now on it is answered from the record
    assert adapter.calls == 1 and again.outcome == ("ack", None)


class AgencyDown(CountingAdapter):
    """An agency that fails every call (down for maintenance) while ``down``."""

    down = True

    def call(self, request: SharedRequest, deadline: Deadline) -> SharedResponse:
        if self.down:
            raise BusUnavailable("the agency answered 503")
        return super().call(request, deadline)


def test_a_taken_over_request_that_fails_is_still_a_re_execution_when_it_runs(
    node: Node, make: Make, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker died holding the lease (it may have reached the agency); the copy that took it
    over failed before the agency (down, a breaker open): the copy that finally executes it is
    counted and audited as a re-execution, not passed off as a first execution."""
    route = next(r for r in node.router.routes() if r.service == PROPERTY)
    monkeypatch.setattr(route.settings.retry, "redeliveries", 3)  # a failure goes round again
    adapter = AgencyDown()
    b, b_replies, _ = make(adapter)
    message = _request(node)
    _left_by_a_killed_worker(b, message, clock)
    first = FakeDelivery(message)
    b.handle(first)
    assert first.outcome == ("retry", "bus-unavailable") and b_replies.sent == []
    adapter.down = False
    c, c_replies, c_metrics = make(adapter)  # the next copy reaches the other node
    again = FakeDelivery(message)
    c.handle(again)  # at once: the failed takeover's lease ended, nobody waits it out
    assert again.outcome == ("ack", None) and adapter.calls == 1
    assert Envelope.from_json(c_replies.sent[-1].body).kind is Kind.response
    assert _count(c_metrics, "bus_reexecutions_total", service=PROPERTY) == 1
    entries = [e for e in node.audit.store.entries() if e.message_id == message.message_id]
    assert [e.side for e in entries if e.outcome == "ok"] == ["provider:re-executed"]


class FailingOnce(Replies):
    """A reply publish that fails the first time (the broker restarting, a confirm too late)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def reply(self, request: Message, message: Message) -> None:
        if not self.failed:
            self.failed = True
            raise BusUnavailable("RabbitMQ did not confirm a publish within 10s")
        super().reply(request, message)


@pytest.mark.parametrize("copy_on", ["same worker", "another node"])
def test_an_answer_whose_send_failed_is_sent_again_from_the_record(
    node: Node, make: Make, copy_on: str
) -> None:
    adapter = CountingAdapter()
    a, _, a_metrics = make(adapter)
    a.transport = cast(Transport, FailingOnce())
    b, b_replies, b_metrics = make(adapter)
    message = _request(node)
    first = FakeDelivery(message)
    a.handle(first)
    assert first.outcome == ("retry", "reply-unsent")  # not dead-lettered, not acked
    assert _count(a_metrics, "bus_redeliveries_total", service=PROPERTY,
                  reason="reply-unsent") == 1
    worker, replies, metrics = (
        (a, cast(Replies, a.transport), a_metrics) if copy_on == "same worker"
        else (b, b_replies, b_metrics)
    )
    copy = FakeDelivery(message)  # the copy the retry queue delivers again
    worker.handle(copy)
    assert adapter.calls == 1  # the agency was asked once
    assert copy.outcome == ("ack", None)
    assert len(replies.sent) == 1
    assert Envelope.from_json(replies.sent[0].body).kind is Kind.response
    assert _count(metrics, "bus_provider_requests_total", service=PROPERTY,
                  outcome="duplicate") == 1
    entries = [e for e in node.audit.store.entries() if e.message_id == message.message_id]
    assert [(e.side, e.outcome) for e in entries] == [("provider", "ok")]  # one execution


class AuditFailingOnce:
    """The node's audit log, whose first write fails (its database away for a moment)."""

    def __init__(self, audit: Any) -> None:
        self.audit = audit
        self.failed = False

    def exchange(self, *args: Any, **kwargs: Any) -> Any:
        return self.audit.exchange(*args, **kwargs)

    def write(self, record: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise BusUnavailable("audit log: database is locked")
        return self.audit.write(record)


def test_an_answer_that_could_not_be_audited_is_executed_again_as_a_re_execution(
    node: Node, make: Make
) -> None:
    """The agency answered but the answer could not be recorded: the next copy runs it again,
    and that second execution is counted and audited as one, not passed off as the first."""
    adapter = CountingAdapter()
    a, a_replies, _ = make(adapter)
    a.audit = cast(Any, AuditFailingOnce(node.audit))
    b, b_replies, b_metrics = make(adapter)
    message = _request(node)
    first = FakeDelivery(message)
    a.handle(first)
    assert first.outcome == ("retry", "audit-unavailable") and a_replies.sent == []
    copy = FakeDelivery(message)
    b.handle(copy)  # at once: the lease ended with the failed record, nobody waits it out
    assert adapter.calls == 2 and copy.outcome == ("ack", None)
    assert Envelope.from_json(b_replies.sent[0].body).kind is Kind.response
    assert _count(b_metrics, "bus_reexecutions_total", service=PROPERTY) == 1
    entries = [e for e in node.audit.store.entries() if e.message_id == message.message_id]
    assert [e.side for e in entries] == ["provider:re-executed"]
