"""``/metrics`` and ``/health`` of a running node: after the demo's exchanges the counters and
histograms carry the expected labels and counts; an agency that fails moves the error counters,
its probe's gauge and readiness."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Receive, Scope, Send

from bus.cli.app import DEMO_MEMBERS, new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.node.wiring import Node
from demo import cadastre, residence_registry
from demo.data import PEOPLE, UNKNOWN_PINFL
from demo.scenario import PROPERTY, RESIDENCE, DemoStack, exchange_all, write_config
from demo.servers import RunningServer, serve_in_thread
from signing import generate_member_key

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base_url: str) -> Samples:
    r = httpx.get(base_url + "/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_the_demo_exchanges_are_counted_timed_and_labelled(demo_stack: DemoStack) -> None:
    url = demo_stack.gateway.url
    before = scrape(url)
    _table, ok = exchange_all(demo_stack)  # the demo's scenario, as the portal
    assert ok
    after = scrape(url)

    def exchanges(service: str, outcome: str) -> float:
        return delta(
            before, after, "bus_exchanges_total", client="portal", service=service, outcome=outcome
        )

    assert exchanges(RESIDENCE, "ok") == 2
    assert exchanges(RESIDENCE, "no-data") == 1
    assert exchanges(PROPERTY, "ok") == 3
    assert exchanges(PROPERTY, "access-denied") == 1
    assert (
        delta(
            before, after, "bus_access_refusals_total",
            side="client", client="portal", service=PROPERTY, reason="purpose-not-allowed",
        )
        == 1
    )  # fmt: skip
    # Sent to the provider: everything but the refusal.
    for service in (RESIDENCE, PROPERTY):
        assert delta(before, after, "bus_exchange_duration_seconds_count", service=service) == 3
        for side, stage in [
            ("client", "sign"), ("client", "transport"), ("client", "verify"),
            ("provider", "verify"), ("provider", "validate"), ("provider", "adapter"),
            ("provider", "sign"),
        ]:  # fmt: skip
            labels = {"service": service, "side": side, "stage": stage}
            assert delta(before, after, "bus_stage_duration_seconds_count", **labels) == 3
            assert delta(before, after, "bus_stage_duration_seconds_sum", **labels) > 0
            # cumulative buckets: +Inf holds every observation
            inf = {**labels, "le": "+Inf"}
            assert delta(before, after, "bus_stage_duration_seconds_bucket", **inf) == 3
        sent = {"service": service, "le": "30.0"}
        assert delta(before, after, "bus_exchange_duration_seconds_bucket", **sent) == 3
    residence = {"provider": "residence-registry", "service": RESIDENCE}
    assert delta(before, after, "bus_adapter_calls_total", **residence, outcome="ok") == 2
    assert delta(before, after, "bus_adapter_calls_total", **residence, outcome="no-data") == 1
    property_ = {"provider": "cadastre", "service": PROPERTY}
    assert delta(before, after, "bus_adapter_calls_total", **property_, outcome="ok") == 3
    errors = [k for k in after if k[0] == "bus_adapter_errors_total"]
    assert sum(after[k] - before.get(k, 0.0) for k in errors) == 0  # no-data is no error
    assert delta(before, after, "bus_provider_requests_total", service=RESIDENCE, outcome="ok") == 2
    assert value(after, "bus_inflight_requests", service=RESIDENCE) == 0
    assert value(after, "bus_provider_inflight_requests", service=PROPERTY) == 0

    # Scrape-time gauges and build info.
    for service in (RESIDENCE, PROPERTY):
        assert value(after, "bus_queue_depth_messages", service=service) == 0
        assert value(after, "bus_queue_consumers", service=service) == 1
    assert value(after, "bus_dead_letter_messages") == 0
    assert value(after, "bus_transport_connected") == 1
    assert value(after, "bus_ready") == 1
    assert value(after, "bus_readiness_check", check="transport") == 1
    [build] = [labels for name, labels in after if name == "bus_build_info"]
    assert dict(build)["node"] == demo_stack.node.name and dict(build)["transport"] == "embedded"

    # Bounded labels: no personal identifier, no message id.
    pinfls = {p.pinfl for p in PEOPLE} | {UNKNOWN_PINFL}
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")
    for _, label_set in after:
        for _, label_value in label_set:
            assert label_value not in pinfls and not uuid.match(label_value), label_value


def test_readiness_lists_its_checks(demo_stack: DemoStack) -> None:
    r = httpx.get(demo_stack.gateway.url + "/health/ready", timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready"
    assert {c["name"] for c in body["checks"]} >= {"transport", "trust-store"}
    assert httpx.get(demo_stack.gateway.url + "/health/live", timeout=5).json() == {"status": "ok"}


# -- an agency that fails ------------------------------------------------------------------------


class SwitchableAgency:
    """The residence registry; while ``down``, every call (its /health too) answers 503."""

    def __init__(self, db: Path) -> None:
        self.app = residence_registry.create_app(db)
        self.down = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.down:
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"down"})
            return
        await self.app(scope, receive, send)


@dataclass
class Probed:
    agency: SwitchableAgency
    node: Node
    gateway: RunningServer
    token: str

    def ask(self) -> httpx.Response:
        return httpx.post(
            f"{self.gateway.url}/v1/services/{RESIDENCE}",
            json={"pinfl": PEOPLE[0].pinfl},
            headers={
                "Authorization": f"Bearer {self.token}",
                "X-Bus-Purpose": "child-benefit",
                "X-Bus-User": "officer-17",
            },
            timeout=20,
        )


@pytest.fixture
def probed(tmp_path: Path) -> Iterator[Probed]:
    """A node whose residence adapter has a readiness probe (GET /health) on a switchable agency."""
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    agency = SwitchableAgency(residence_registry.seed(tmp_path / "residence.db"))
    with serve_in_thread(agency) as agency_server:
        path = write_config(
            tmp_path,
            residence_url=agency_server.url,
            cadastre_db=cadastre.create_database(tmp_path / "cadastre.db"),
            token_sha256=digest,
        )
        config = yaml.safe_load(path.read_text())
        config["services"][RESIDENCE]["adapter"]["probe_path"] = "/health"
        config["services"][RESIDENCE]["retry"] = {"attempts": 3, "max_delay_s": 0.05}
        config["services"][RESIDENCE]["breaker"] = {"failures": 4, "reset_s": 1.0}
        path.write_text(yaml.safe_dump(config))
        node = Node(load_settings(path))
        node.health.ttl = 0.0  # no caching: each probe asks again
        with serve_in_thread(create_app(node)) as gateway:
            yield Probed(agency, node, gateway, token)


def test_a_failing_agency_moves_the_error_counters_its_probe_and_readiness(
    probed: Probed,
) -> None:
    url = probed.gateway.url
    assert probed.ask().status_code == 200
    before = scrape(url)
    assert value(before, "bus_provider_up", provider="residence-registry", service=RESIDENCE) == 1
    assert httpx.get(url + "/health/ready", timeout=5).status_code == 200

    probed.agency.down = True
    r = probed.ask()
    assert r.status_code == 502 and r.json()["code"] == "provider-unavailable"
    after = scrape(url)
    residence = {"provider": "residence-registry", "service": RESIDENCE}
    kind = {**residence, "kind": "provider-unavailable"}
    assert delta(before, after, "bus_adapter_errors_total", **kind) == 3  # every attempt
    assert delta(before, after, "bus_adapter_retries_total", **kind) == 2
    outcome = {"client": "portal", "service": RESIDENCE, "outcome": "provider-unavailable"}
    assert delta(before, after, "bus_exchanges_total", **outcome) == 1
    assert (
        delta(before, after, "bus_provider_requests_total", service=RESIDENCE,
              outcome="provider-unavailable")
        == 1
    )  # fmt: skip
    assert value(after, "bus_provider_up", **residence) == 0
    assert value(after, "bus_ready") == 0
    ready = httpx.get(url + "/health/ready", timeout=5)
    assert ready.status_code == 503
    [check] = [c for c in ready.json()["checks"] if c["name"] == f"provider:{RESIDENCE}"]
    assert check == {
        "name": f"provider:{RESIDENCE}",
        "ok": False,
        "detail": "GET /health: 503 from the provider",
    }

    probed.agency.down = False
    deadline = time.monotonic() + 5
    while httpx.get(url + "/health/ready", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "not ready again after the agency came back"
        time.sleep(0.05)
    assert probed.ask().status_code == 200


def test_a_failing_agency_opens_its_breaker_and_a_probe_closes_it(probed: Probed) -> None:
    """Failures past the threshold open the breaker (bus_circuit_state 2): calls stop reaching
    the agency and are answered 503 circuit-open at once; after reset_s one probe call goes
    through, succeeds, and closes it (0)."""
    url = probed.gateway.url
    labels = {"provider": "residence-registry", "service": RESIDENCE}
    assert probed.ask().status_code == 200
    assert value(scrape(url), "bus_circuit_state", **labels) == 0

    probed.agency.down = True
    assert probed.ask().status_code == 502  # 3 attempts: 3 failures, threshold 4: still closed
    assert value(scrape(url), "bus_circuit_state", **labels) == 0
    r = probed.ask()  # the 4th failure opens it; the remaining attempts are refused
    assert r.status_code == 503 and r.json()["code"] == "circuit-open", r.text
    opened = scrape(url)
    assert value(opened, "bus_circuit_state", **labels) == 2
    calls = value(opened, "bus_adapter_calls_total", outcome="provider-unavailable", **labels)

    probed.agency.down = False
    r = probed.ask()  # still open: refused without calling the agency
    assert r.status_code == 503 and r.json()["code"] == "circuit-open"
    assert value(scrape(url), "bus_adapter_calls_total", outcome="ok", **labels) == 1
    time.sleep(1.05)  # reset_s
    assert probed.ask().status_code == 200  # the half-open probe succeeds
    closed = scrape(url)
    assert value(closed, "bus_circuit_state", **labels) == 0
    assert (
        value(closed, "bus_adapter_calls_total", outcome="provider-unavailable", **labels) == calls
    )
