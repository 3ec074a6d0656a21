"""The audit log end to end: the provider's node records each answer before it is sent, the
gateway records its refusals, subjects are stored as keyed hashes, the chain holds, and the
node reports the audit store in its readiness and ``bus_audit_write_seconds``."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from bus.cli.app import DEMO_MEMBERS, new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.node.wiring import Node
from bus.records.audit import verify
from demo import cadastre
from demo.data import PEOPLE
from demo.scenario import PROPERTY, RESIDENCE, DemoStack, write_config
from demo.servers import serve_in_thread
from signing import generate_member_key


def _entries(stack: DemoStack, correlation: str) -> list[dict[str, object]]:
    return [
        e.hashed_fields() for e in stack.node.audit.store.entries() if e.correlation == correlation
    ]


def test_an_answer_is_recorded_before_it_is_sent(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    person = PEOPLE[0]
    correlation = str(uuid.uuid4())
    r = portal.post(
        f"/v1/services/{RESIDENCE}",
        json={"pinfl": person.pinfl},
        headers={"X-Bus-Purpose": "child-benefit", "X-Bus-Correlation": correlation},
    )
    assert r.status_code == 200, r.text
    (entry,) = _entries(demo_stack, correlation)
    assert entry["side"] == "provider" and entry["outcome"] == "ok"
    assert entry["message_id"] == r.headers["X-Bus-Message-Id"]
    assert (entry["client"], entry["provider"], entry["service"]) == (
        "portal", "residence-registry", RESIDENCE
    )
    assert (entry["user"], entry["purpose"]) == ("officer-17", "child-benefit")
    # the digest of exactly the signed answer the portal received; no payload, no PINFL
    assert entry["response_digest"] == hashlib.sha256(r.content).hexdigest()
    assert entry["subject"] == demo_stack.node.audit.subject_key(person.pinfl)
    assert person.pinfl not in str(entry) and person.full_name not in str(entry)


def test_a_provider_error_is_recorded_by_the_provider(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    from demo.data import UNKNOWN_PINFL

    correlation = str(uuid.uuid4())
    r = portal.post(
        f"/v1/services/{RESIDENCE}",
        json={"pinfl": UNKNOWN_PINFL},
        headers={"X-Bus-Purpose": "child-benefit", "X-Bus-Correlation": correlation},
    )
    assert r.status_code == 404, r.text
    (entry,) = _entries(demo_stack, correlation)  # once: not again by the gateway
    assert (entry["side"], entry["outcome"]) == ("provider", "no-data")


def test_refusals_are_recorded_by_the_gateway(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    person = PEOPLE[1]
    correlation = str(uuid.uuid4())
    r = portal.post(
        f"/v1/services/{PROPERTY}",
        json={"pinfl": person.pinfl},
        headers={"X-Bus-Purpose": "marketing", "X-Bus-Correlation": correlation},
    )
    assert r.status_code == 403
    (entry,) = _entries(demo_stack, correlation)
    assert (entry["side"], entry["outcome"], entry["client"]) == (
        "gateway", "access-denied", "portal"
    )
    assert entry["purpose"] == "marketing" and entry["response_digest"] is None
    assert entry["subject"] == demo_stack.node.audit.subject_key(person.pinfl)

    # Before authentication: one entry per source, minute and outcome, not one per request
    # (bus.gateway.throttle), and never with what the caller claimed (its correlation).
    before = len(list(demo_stack.node.audit.store.entries()))
    for _ in range(10):
        anonymous = httpx.post(
            f"{demo_stack.gateway.url}/v1/services/{PROPERTY}",
            json={"pinfl": person.pinfl},
            headers={"Authorization": "Bearer wrong", "X-Bus-Purpose": "x", "X-Bus-User": "u",
                     "X-Bus-Correlation": (c2 := str(uuid.uuid4()))},
        )
        assert anonymous.status_code == 401
    assert _entries(demo_stack, c2) == []
    entries = list(demo_stack.node.audit.store.entries())
    assert len(entries) - before <= 3  # a first, or a minute's count and the next's first
    assert any((e.user, e.outcome, e.client, e.service) ==
               ("source:127.0.0.1", "unauthenticated", "-", PROPERTY) for e in entries)


def test_the_chain_holds_and_the_node_reports_the_audit_store(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    count, _, broken = verify(demo_stack.node.audit.store.entries())
    assert broken is None and count >= 1
    ready = httpx.get(f"{demo_stack.gateway.url}/health/ready", timeout=5).json()
    assert {"name": "audit", "ok": True, "detail": "sqlite writable"} in ready["checks"]
    metrics = httpx.get(f"{demo_stack.gateway.url}/metrics", timeout=5).text
    (line,) = [m for m in metrics.splitlines() if m.startswith("bus_audit_write_seconds_count")]
    assert float(line.split()[-1]) >= count


@pytest.mark.postgres
def test_a_node_with_its_audit_log_in_postgresql(tmp_path: Path) -> None:
    import psycopg

    pg = "postgresql://postgres@127.0.0.1:5432/test"
    schema = f"audit_node_{uuid.uuid4().hex[:12]}"
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    path = write_config(
        tmp_path,
        residence_url="http://127.0.0.1:9",
        cadastre_db=cadastre.create_database(tmp_path / "c.db"),
        token_sha256=digest,
    )
    config = yaml.safe_load(path.read_text())
    config["audit"] = {"url": pg, "table": f"{schema}.bus_audit", "secret": "s" * 32}
    path.write_text(yaml.safe_dump(config))
    try:
        node = Node(load_settings(path))
        with serve_in_thread(create_app(node)) as gateway:
            r = httpx.post(
                f"{gateway.url}/v1/services/{PROPERTY}",
                json={"pinfl": PEOPLE[0].pinfl},
                headers={"Authorization": f"Bearer {token}", "X-Bus-User": "officer-17",
                         "X-Bus-Purpose": "housing-subsidy"},
                timeout=10,
            )
            assert r.status_code == 200, r.text
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # the readiness checks run in the background
                ready = httpx.get(f"{gateway.url}/health/ready", timeout=5).json()
                if ready["status"] == "ready":
                    break
                time.sleep(0.1)
            assert {"name": "audit", "ok": True, "detail": "postgresql writable"} in ready[
                "checks"
            ]
        with psycopg.connect(pg) as db:
            rows = db.execute(
                f"SELECT message_id, outcome, side, response_digest FROM {schema}.bus_audit"
            ).fetchall()
        assert rows == [
            (r.headers["X-Bus-Message-Id"], "ok", "provider", hashlib.sha256(r.content).hexdigest())
        ]
    finally:
        with psycopg.connect(pg, autocommit=True) as db:
            db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
