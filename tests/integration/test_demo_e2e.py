"""End to end on loopback: the portal asks through the node; answers are signed by providers."""

from __future__ import annotations

import io
import re

import httpx
import pytest
import rfc8785
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from rich.console import Console

from demo.data import PEOPLE
from demo.scenario import PROPERTY, RESIDENCE, DemoStack, run_demo, verify_answer
from signing.jws import _b64d


def _ask(portal: httpx.Client, service: str, pinfl: str, purpose: str) -> httpx.Response:
    return portal.post(
        f"/v1/services/{service}", json={"pinfl": pinfl}, headers={"X-Bus-Purpose": purpose}
    )


def test_residence_answer_is_signed_by_the_registry(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    person = PEOPLE[0]
    r = _ask(portal, RESIDENCE, person.pinfl, "child-benefit")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["kind"] == "response"
    assert answer["service"] == RESIDENCE and answer["client"] == "portal"
    assert answer["payload"]["pinfl"] == person.pinfl
    assert r.headers["X-Bus-Message-Id"] == answer["correlation"]
    assert verify_answer(
        answer, demo_stack.state / "keys" / "residence-registry.pub", "residence-registry"
    )


def test_signature_verifies_with_only_the_public_key_and_a_jcs_library(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    """What a portal developer does by hand: RFC 8785 + RFC 7797 + Ed25519, no bus code."""
    r = _ask(portal, PROPERTY, PEOPLE[0].pinfl, "housing-subsidy")
    assert r.status_code == 200, r.text
    answer = r.json()
    header_b64, empty, sig_b64 = answer.pop("signature").split(".")
    assert empty == ""
    key = load_pem_public_key((demo_stack.state / "keys" / "cadastre.pub").read_bytes())
    key.verify(_b64d(sig_b64), header_b64.encode() + b"." + rfc8785.dumps(answer))  # type: ignore[union-attr]


def test_tampered_answer_does_not_verify(demo_stack: DemoStack, portal: httpx.Client) -> None:
    answer = _ask(portal, PROPERTY, PEOPLE[0].pinfl, "housing-subsidy").json()
    answer["payload"]["properties"] = []
    assert not verify_answer(answer, demo_stack.state / "keys" / "cadastre.pub", "cadastre")


def test_answer_signed_by_provider_not_by_another_member(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    answer = _ask(portal, PROPERTY, PEOPLE[0].pinfl, "housing-subsidy").json()
    # The cadastre's answer must not pass as the residence registry's.
    assert not verify_answer(
        answer, demo_stack.state / "keys" / "residence-registry.pub", "residence-registry"
    )


def test_property_owner_and_non_owner(demo_stack: DemoStack, portal: httpx.Client) -> None:
    owner = next(p for p in PEOPLE if p.properties)
    nobody = next(p for p in PEOPLE if not p.properties)
    owned = _ask(portal, PROPERTY, owner.pinfl, "housing-subsidy").json()["payload"]["properties"]
    assert len(owned) == len(owner.properties)
    none = _ask(portal, PROPERTY, nobody.pinfl, "housing-subsidy").json()["payload"]["properties"]
    assert none == []


def test_openapi_shows_the_shared_schemas(demo_stack: DemoStack) -> None:
    spec = httpx.get(f"{demo_stack.gateway.url}/openapi.json").json()
    assert f"/v1/services/{RESIDENCE}" in spec["paths"]
    schemas = spec["components"]["schemas"]
    assert "ResidenceRegistrationRequest" in schemas
    assert "PropertyOwnership" in schemas
    assert schemas["ResidenceRegistrationRequest"]["properties"]["pinfl"]["minLength"] == 14


def test_catalog_lists_services_the_portal_may_use(portal: httpx.Client) -> None:
    services = {s["service"]: s["purposes"] for s in portal.get("/v1/services").json()}
    assert "child-benefit" in services[RESIDENCE]
    assert "housing-subsidy" in services[PROPERTY]


def test_run_demo_prints_a_table_and_exits_zero(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    code = run_demo(Console(file=out, width=200), state_dir=tmp_path)
    text = out.getvalue()
    assert code == 0, text
    assert "verified" in text
    assert "every exchange ended as expected" in text
    assert "chain verified" in text and "Who obtained data about" in text
    assert "Once-only: one POST /v1/bundles" in text and "404 no-data" in text
    for person in PEOPLE:
        assert person.pinfl not in text  # subjects are masked
    # the services citizens ask for, across the agencies that hold their data
    shown = set(re.findall(r"\b([a-z-]+/[a-z-]+/v[0-9]+)\b", text))
    assert len(shown) >= 11 and len({s.split("/")[0] for s in shown}) >= 8, shown
    # the transactional application, its evidence assembled once-only first
    assert "its evidence once-only in one bundle" in text
    assert "social-protection/benefit-eligibility/v1" in text and "eligible (low-income" in text
    assert text.count("receipt IH-") == 2 and "the retry got the same receipt" in text
    assert "the agency holds 1 record of application" in text
    assert "provider-rejected: filed already as" in text and "registered on" in text
    assert "the registry's inbox holds 1 task of application" in text


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_run_demo_with_two_worker_processes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``run_bus.py demo --workers 2``: the node as ``serve --workers 2``, every step as above."""
    out = io.StringIO()
    code = run_demo(Console(file=out, width=200), state_dir=tmp_path, workers=2)
    text = out.getvalue()
    assert code == 0, text
    assert "2 worker processes" in text
    assert "every exchange ended as expected" in text and "chain verified" in text
    assert '"every worker is up"' in (tmp_path / "node.log").read_text()
