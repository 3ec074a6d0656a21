"""Per-source throttles and the bounded audit of refusals before authentication.

The demo node runs with tiny buckets that do not refill during a test (``BUS_HTTP__…``, as an
operator would set them), and each test speaks from its own loopback address (127.0.0.N), so
the sources are told apart exactly as on a network.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bus.config.http import SourceRate
from bus.gateway.throttle import INBOX_SIGN_IN, AnonymousRefusals, SourceBuckets, route_label
from bus.ops.metrics import BusMetrics
from demo.data import AZIZ
from demo.scenario import RESIDENCE, DemoStack, start_stack

pytestmark = pytest.mark.slow
BURST = {"PUBLIC": 3, "SIGN_IN": 8, "ANONYMOUS": 5}
LOCKOUT_AFTER = 3


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    with pytest.MonkeyPatch.context() as env:
        for area, burst in BURST.items():
            env.setenv(f"BUS_HTTP__{area}__BURST", str(burst))
            env.setenv(f"BUS_HTTP__{area}__PER_SECOND", "0.0001")  # no refill within a test
        env.setenv("BUS_HTTP__LOCKOUT_FAILURES", str(LOCKOUT_AFTER))
        stack = start_stack(Path(tmp_path_factory.mktemp("throttled")))
    try:
        yield stack
    finally:
        stack.stop()


def client_from(stack: DemoStack, last_octet: int) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=f"127.0.0.{last_octet}")
    return httpx.Client(base_url=stack.gateway.url, transport=transport, timeout=10)


def metric(stack: DemoStack, line_start: str) -> float:
    text = httpx.get(stack.gateway.url + "/metrics", timeout=10).text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith(line_start)]
    return sum(values)


def too_many(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1


@pytest.mark.parametrize("path", ["/verify/BUS-2026-000001-1", "/v1/documents/BUS-2026-000001-1"])
def test_public_pages_are_throttled_per_source(throttled: DemoStack, path: str) -> None:
    octet = 2 if path.startswith("/verify") else 3
    with client_from(throttled, octet) as visitor:
        answers = [visitor.get(path, headers={"Accept": "application/json"}).status_code
                   for _ in range(BURST["PUBLIC"])]
        assert 429 not in answers
        r = visitor.get(path, headers={"Accept": "application/json"})
        too_many(r)
        assert r.json()["code"] == "rate-limited"
    with client_from(throttled, 20 + octet) as neighbour:  # another address is not held back
        assert neighbour.get(path).status_code != 429


def test_repeated_failed_sign_ins_lock_the_source_out_and_are_audited(
    throttled: DemoStack,
) -> None:
    before = metric(throttled, "bus_sign_in_lockouts_total")
    with client_from(throttled, 4) as guesser:
        for attempt in range(LOCKOUT_AFTER):
            assert guesser.get("/inbox", auth=("archivist", f"guess-{attempt}")
                               ).status_code == 401
        locked = guesser.get("/inbox", auth=("archivist", throttled.archivist))
        too_many(locked)  # even the right password, from this address, for a while
        assert "text/html" in locked.headers["content-type"]
    with client_from(throttled, 24) as operator:  # the operator at another desk signs in
        assert operator.get("/inbox", auth=("archivist", throttled.archivist)).status_code == 200
    assert metric(throttled, "bus_sign_in_lockouts_total") == before + 1
    (entry,) = [e for e in throttled.node.audit.store.entries() if e.service == INBOX_SIGN_IN]
    assert (entry.outcome, entry.user, entry.client) == (
        "sign-in-locked", "source:127.0.0.4 operator:archivist", "-")


def test_a_successful_sign_in_forgives_earlier_failures(throttled: DemoStack) -> None:
    with client_from(throttled, 5) as operator:
        for _ in range(2):  # 6 requests: within the sign-in page's burst
            for _ in range(LOCKOUT_AFTER - 1):
                assert operator.get("/inbox", auth=("archivist", "typo")).status_code == 401
            assert operator.get("/inbox", auth=("archivist", throttled.archivist)
                                ).status_code == 200


def test_the_sign_in_page_is_throttled_per_source(throttled: DemoStack) -> None:
    with client_from(throttled, 6) as operator:
        for _ in range(BURST["SIGN_IN"]):
            assert operator.get("/inbox", auth=("archivist", throttled.archivist)
                                ).status_code == 200
        too_many(operator.get("/inbox", auth=("archivist", throttled.archivist)))


def test_refusals_before_authentication_are_counted_audited_once_and_then_throttled(
    throttled: DemoStack,
) -> None:
    store = throttled.node.audit.store
    before = len(list(store.entries()))
    counted = metric(throttled, 'bus_anonymous_refusals_total{outcome="unauthenticated"')
    with client_from(throttled, 7) as stranger:
        for _ in range(BURST["ANONYMOUS"]):
            r = stranger.post(f"/v1/services/{RESIDENCE}", json={"pinfl": AZIZ.pinfl},
                              headers={"Authorization": "Bearer guessed", "X-Bus-User": "u",
                                       "X-Bus-Purpose": "child-benefit"})
            assert r.status_code == 401
        r = stranger.post(f"/v1/services/{RESIDENCE}", json={"pinfl": AZIZ.pinfl},
                          headers={"Authorization": "Bearer guessed"})
        too_many(r)
        # its own bucket is empty: even the right token waits, from this address
        too_many(stranger.get("/v1/services",
                              headers={"Authorization": f"Bearer {throttled.token}"}))
    with client_from(throttled, 27) as portal:
        assert portal.get("/v1/services", headers={
            "Authorization": f"Bearer {throttled.token}"}).status_code == 200
    assert metric(throttled, 'bus_anonymous_refusals_total{outcome="unauthenticated"'
                  ) == counted + BURST["ANONYMOUS"]
    assert metric(throttled, 'bus_throttled_total{area="anonymous"') >= 2
    mine = [e for e in store.entries() if e.user == "source:127.0.0.7"]
    assert len(list(store.entries())) - before <= 4  # not one per refusal
    assert {e.outcome for e in mine} <= {"unauthenticated", "rate-limited"}
    assert all(e.client == "-" and e.subject is None for e in mine)


class _Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 4, 10, 0, 5, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.mark.parametrize("refusals", [1, 2, 50])
def test_one_entry_per_source_minute_and_outcome_then_the_count(
    demo_stack: DemoStack, refusals: int
) -> None:
    clock = _Clock()
    aggregate = AnonymousRefusals(demo_stack.node.audit, BusMetrics(), clock)
    first = [r for _ in range(refusals)
             for r in aggregate.refused("10.9.8.7", "services", "unauthenticated", RESIDENCE)]
    assert [(r.user, r.purpose, r.outcome) for r in first] == [
        ("source:10.9.8.7", "-", "unauthenticated")]
    clock.now += dt.timedelta(minutes=1)
    later = aggregate.refused("10.9.8.7", "services", "unauthenticated", RESIDENCE)
    counts = [r.purpose for r in later if r.purpose.startswith("count:")]
    assert counts == ([f"count:{refusals}"] if refusals > 1 else [])
    assert aggregate.flush() == []  # one refusal in the new minute: already written


def test_sources_past_the_cap_count_together(demo_stack: DemoStack) -> None:
    aggregate = AnonymousRefusals(demo_stack.node.audit, BusMetrics(), _Clock(), max_sources=2)
    users = [r.user for source in ("a", "b", "c", "d")
             for r in aggregate.refused(source, "other", "unauthenticated", "-")]
    assert users == ["source:a", "source:b", "source:other"]
    assert [r.purpose for r in aggregate.flush()] == ["count:2"]


@pytest.mark.parametrize("taken, refused", [(3, False), (4, True)])
def test_buckets_per_source(taken: int, refused: bool) -> None:
    buckets = SourceBuckets(SourceRate(per_second=1, burst=3), clock=lambda: 0.0)
    waits = [buckets.take("x") for _ in range(taken)]
    assert (waits[-1] > 0) is refused
    assert buckets.take("y") == 0.0


def test_buckets_forget_the_longest_idle_source() -> None:
    buckets = SourceBuckets(SourceRate(per_second=1, burst=1), clock=lambda: 0.0, max_sources=2)
    buckets.take("a")
    buckets.take("b")
    buckets.take("c")  # "a" is forgotten: it starts full again
    assert buckets.waiting("a") == 0.0
    assert buckets.waiting("c") > 0


@pytest.mark.parametrize("path, label", [
    (f"/v1/services/{RESIDENCE}", "services"), ("/v1/services", "catalog"),
    ("/v1/bundles", "bundles"), ("/v1/messages/x", "messages"), ("/inbox/1", "inbox"),
    ("/v1/citizens/me/access-log", "citizens"), ("/anything/else", "other"),
])
def test_route_labels_are_bounded(path: str, label: str) -> None:
    assert route_label(path) == label


def test_a_wrong_token_on_a_document_is_counted_as_a_refusal_before_authentication(
    throttled: DemoStack,
) -> None:
    line = 'bus_anonymous_refusals_total{outcome="unauthenticated",route="documents"'
    before = metric(throttled, line)
    with client_from(throttled, 8) as stranger:
        r = stranger.get("/v1/documents/BUS-2026-000001-1",
                         headers={"Authorization": "Bearer guessed"})
        assert r.status_code == 401
    assert metric(throttled, line) == before + 1
