"""The audit log end to end: the provider's node records each answer before it is sent, the
gateway records its refusals, subjects are stored as keyed hashes, the chain holds, and the
node reports the audit store in its readiness and ``bus_audit_write_seconds``."""

from __future__ import annotations

import hashlib
import uuid

import httpx

from bus.audit import verify
from demo.data import PEOPLE
from demo.scenario import PROPERTY, RESIDENCE, DemoStack


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

    anonymous = httpx.post(
        f"{demo_stack.gateway.url}/v1/services/{PROPERTY}",
        json={"pinfl": person.pinfl},
        headers={"Authorization": "Bearer wrong", "X-Bus-Purpose": "x", "X-Bus-User": "u",
                 "X-Bus-Correlation": (c2 := str(uuid.uuid4()))},
    )
    assert anonymous.status_code == 401
    (entry,) = _entries(demo_stack, c2) or [{}]
    assert (entry["outcome"], entry["client"]) == ("unauthenticated", "-")


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
