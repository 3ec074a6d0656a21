"""The citizen's "who read my data" report: only that person's entries, behind an access right,
itself audited; and ``run_bus.py audit subject``."""

from __future__ import annotations

import httpx
from typer.testing import CliRunner

from bus.cli.app import app
from bus.gateway.citizens import CITIZEN_LOG_PATH
from bus.policy.access import CITIZEN_ACCESS_LOG
from demo.data import PEOPLE
from demo.scenario import PROPERTY, RESIDENCE, DemoStack
from schemas import mask_identifier

ALICE, BOB = PEOPLE[0], PEOPLE[1]


def _ask(portal: httpx.Client, service: str, pinfl: str, purpose: str, user: str) -> str:
    r = portal.post(
        f"/v1/services/{service}",
        json={"pinfl": pinfl},
        headers={"X-Bus-Purpose": purpose, "X-Bus-User": user},
    )
    assert r.status_code == 200, r.text
    return r.headers["X-Bus-Message-Id"]


def _report(portal: httpx.Client, pinfl: str, purpose: str = "citizen-request") -> httpx.Response:
    return portal.get(
        CITIZEN_LOG_PATH,
        headers={"X-Bus-Subject": pinfl, "X-Bus-Purpose": purpose, "X-Bus-User": "citizen"},
    )


def test_the_report_lists_who_obtained_the_persons_data_and_nobody_elses(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    mine = {
        _ask(portal, RESIDENCE, ALICE.pinfl, "child-benefit", "officer-1"),
        _ask(portal, PROPERTY, ALICE.pinfl, "housing-subsidy", "officer-2"),
    }
    theirs = _ask(portal, RESIDENCE, BOB.pinfl, "social-assistance", "officer-3")
    r = _report(portal, ALICE.pinfl)
    assert r.status_code == 200, r.text
    body = r.json()
    assert ALICE.pinfl not in r.text
    assert body["subject"] == mask_identifier(ALICE.pinfl)
    ids = {e["message_id"] for e in body["entries"]}
    assert mine <= ids and theirs not in ids
    assert body["count"] == len(body["entries"]) >= 2
    newest = body["entries"][0]
    assert newest["message_id"] in mine
    by_id = {e["message_id"]: e for e in body["entries"]}
    for message_id in mine:
        entry = by_id[message_id]
        assert entry["agency"] == {"code": "portal", "name": "Public services portal"}
        assert entry["official"] in ("officer-1", "officer-2")
        assert entry["purpose"] in ("child-benefit", "housing-subsidy")
        assert entry["provider"]["code"] in ("residence-registry", "cadastre")
        assert entry["service_title"]
    # Bob's report holds Bob's entry and none of Alice's
    bob = _report(portal, BOB.pinfl).json()
    assert theirs in {e["message_id"] for e in bob["entries"]}
    assert not mine & {e["message_id"] for e in bob["entries"]}


def test_the_report_is_audited(demo_stack: DemoStack, portal: httpx.Client) -> None:
    r = _report(portal, ALICE.pinfl)
    assert r.status_code == 200
    key = demo_stack.node.audit.subject_key(ALICE.pinfl)
    own = [
        e for e in demo_stack.node.audit.store.entries(subject=key)
        if e.service == CITIZEN_ACCESS_LOG
    ]
    assert own and own[-1].outcome == "ok" and own[-1].side == "gateway"
    assert own[-1].user == "citizen" and own[-1].purpose == "citizen-request"


def test_the_report_needs_an_access_right(demo_stack: DemoStack, portal: httpx.Client) -> None:
    r = _report(portal, ALICE.pinfl, purpose="curiosity")
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "access-denied"
    key = demo_stack.node.audit.subject_key(ALICE.pinfl)
    refused = [
        e for e in demo_stack.node.audit.store.entries(subject=key)
        if e.service == CITIZEN_ACCESS_LOG and e.outcome == "access-denied"
    ]
    assert refused and refused[-1].purpose == "curiosity"
    anonymous = httpx.get(
        demo_stack.gateway.url + CITIZEN_LOG_PATH,
        headers={"X-Bus-Subject": ALICE.pinfl, "X-Bus-Purpose": "citizen-request",
                 "X-Bus-User": "x"},
    )
    assert anonymous.status_code == 401


def test_a_malformed_pinfl_is_refused(portal: httpx.Client) -> None:
    r = _report(portal, "12345678901234")
    assert r.status_code == 400 and r.json()["code"] == "malformed-request"
    assert _report(portal, "1" * 15).status_code in (400, 422)


def test_cli_audit_subject(demo_stack: DemoStack, portal: httpx.Client) -> None:
    _ask(portal, PROPERTY, ALICE.pinfl, "housing-subsidy", "officer-cli")
    result = CliRunner().invoke(
        app, ["audit", "subject", ALICE.pinfl, "--config", str(demo_stack.config_path)]
    )
    assert result.exit_code == 0, result.output
    assert "officer-cli" in result.output and "Public services portal" in result.output
    assert ALICE.pinfl not in result.output
    bad = CliRunner().invoke(app, ["audit", "subject", "123", "-c", str(demo_stack.config_path)])
    assert bad.exit_code == 2
