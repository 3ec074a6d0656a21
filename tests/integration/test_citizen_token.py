"""The citizen's own "who read my data" report, with an ID token of the (demo) national identity
provider: only the token's person, whatever the request says; bad tokens refused 401 and
audited; the portal's path unchanged beside it."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from bus.gateway.citizens import CITIZEN_CLIENT, CITIZEN_LOG_PATH
from bus.policy.access import CITIZEN_ACCESS_LOG
from demo.data import PEOPLE
from demo.identity import DemoIdentityProvider, foreign_key
from demo.scenario import PROPERTY, RESIDENCE, DemoStack
from schemas import mask_identifier

ALICE, BOB = PEOPLE[0], PEOPLE[1]


@pytest.fixture
def idp(demo_stack: DemoStack) -> DemoIdentityProvider:
    assert demo_stack.identity is not None
    return demo_stack.identity


@pytest.fixture
def citizen(demo_stack: DemoStack) -> Iterator[httpx.Client]:
    """A browser of a citizen: no member token, no bus headers."""
    with httpx.Client(base_url=demo_stack.gateway.url, timeout=10) as client:
        yield client


def _report(client: httpx.Client, token: str, **headers: str) -> httpx.Response:
    return client.get(CITIZEN_LOG_PATH, headers={"Authorization": f"Bearer {token}", **headers})


def _ask(portal: httpx.Client, service: str, pinfl: str, purpose: str) -> str:
    r = portal.post(f"/v1/services/{service}", json={"pinfl": pinfl},
                    headers={"X-Bus-Purpose": purpose})
    assert r.status_code == 200, r.text
    return r.headers["X-Bus-Message-Id"]


def _refusals(demo_stack: DemoStack) -> list[str]:
    return [
        e.message_id for e in demo_stack.node.audit.store.entries()
        if e.service == CITIZEN_ACCESS_LOG and e.client == CITIZEN_CLIENT
        and e.outcome == "unauthenticated"
    ]


def test_a_token_for_one_person_never_returns_another_s_entries(
    demo_stack: DemoStack, portal: httpx.Client, citizen: httpx.Client, idp: DemoIdentityProvider
) -> None:
    alice_ids = {_ask(portal, RESIDENCE, ALICE.pinfl, "child-benefit"),
                 _ask(portal, PROPERTY, ALICE.pinfl, "housing-subsidy")}
    bob_ids = {_ask(portal, RESIDENCE, BOB.pinfl, "social-assistance")}
    alice = _report(citizen, idp.id_token(ALICE.pinfl))
    assert alice.status_code == 200, alice.text
    body = alice.json()
    assert body["subject"] == mask_identifier(ALICE.pinfl) and ALICE.pinfl not in alice.text
    seen = {e["message_id"] for e in body["entries"]}
    assert alice_ids <= seen and not bob_ids & seen
    bob = _report(citizen, idp.id_token(BOB.pinfl)).json()
    assert bob_ids <= {e["message_id"] for e in bob["entries"]}
    assert not alice_ids & {e["message_id"] for e in bob["entries"]}
    # the person is the token's: naming someone else in the request is refused, not followed
    mixed = _report(citizen, idp.id_token(ALICE.pinfl), **{"X-Bus-Subject": BOB.pinfl})
    assert mixed.status_code == 400 and BOB.pinfl not in mixed.text
    # other headers change nothing: Alice's token still shows Alice
    again = _report(citizen, idp.id_token(ALICE.pinfl), **{"X-Bus-User": BOB.pinfl})
    assert again.json()["subject"] == mask_identifier(ALICE.pinfl)


def test_the_citizen_s_report_is_audited_as_theirs(
    demo_stack: DemoStack, citizen: httpx.Client, idp: DemoIdentityProvider
) -> None:
    r = _report(citizen, idp.id_token(ALICE.pinfl))
    assert r.status_code == 200
    key = demo_stack.node.audit.subject_key(ALICE.pinfl)
    own = [e for e in demo_stack.node.audit.store.entries(subject=key)
           if e.service == CITIZEN_ACCESS_LOG and e.client == CITIZEN_CLIENT]
    assert own and own[-1].outcome == "ok" and own[-1].side == "gateway"
    assert own[-1].user == "citizen" and own[-1].purpose == "citizen-request"


def _unsigned(idp: DemoIdentityProvider, pinfl: str) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": idp.issuer, "aud": "interagency-bus", "exp": now + 300, "iat": now,
              "pinfl": pinfl}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _hmac_with_the_public_key(idp: DemoIdentityProvider, pinfl: str) -> str:
    """Algorithm confusion: HS256 keyed with the provider's public key."""
    secret = OctKey.import_key(json.dumps(idp.jwks()["keys"][0]).encode())
    now = int(time.time())
    claims = {"iss": idp.issuer, "aud": "interagency-bus", "exp": now + 300, "pinfl": pinfl}
    return jwt.encode({"alg": "HS256", "kid": idp.key.kid}, claims, secret)


def test_bad_tokens_are_refused_401_and_audited(
    demo_stack: DemoStack, citizen: httpx.Client, idp: DemoIdentityProvider
) -> None:
    an_hour_ago = time.time() - 3600
    bad = {
        "token-expired": idp.id_token(ALICE.pinfl, now=an_hour_ago),
        "token-audience": idp.id_token(ALICE.pinfl, audience="another-service"),
        "token-issuer": idp.id_token(ALICE.pinfl, iss="https://id.elsewhere.example"),
        "token-algorithm": _unsigned(idp, ALICE.pinfl),
        "token-unknown-key": idp.id_token(ALICE.pinfl, key=foreign_key()),
        "token-subject": idp.id_token("12345678901234"),
        "token-malformed": "a.b.c",
    }
    confused = _hmac_with_the_public_key(idp, ALICE.pinfl)
    impostor = ECKey.generate_key("P-256", parameters={"kid": idp.key.kid})
    forged_kid = idp.id_token(ALICE.pinfl, key=impostor)  # the provider's kid, another key
    before = len(_refusals(demo_stack))
    metric = demo_stack.node.metrics.access_refusals
    for reason, token in [*bad.items(), ("token-algorithm", confused),
                          ("token-signature", forged_kid)]:
        counted = metric("client", CITIZEN_CLIENT, "-", reason)._value.get()
        r = _report(citizen, token)
        assert r.status_code == 401, (reason, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["code"] == "unauthenticated" and problem["status"] == 401
        assert ALICE.pinfl not in r.text and "entries" not in problem
        assert metric("client", CITIZEN_CLIENT, "-", reason)._value.get() == counted + 1, reason
    refused = _refusals(demo_stack)
    assert len(refused) == before + len(bad) + 2  # each one audited before the answer
    key = demo_stack.node.audit.subject_key(ALICE.pinfl)
    assert not [e for e in demo_stack.node.audit.store.entries(subject=key)
                if e.outcome == "unauthenticated"]  # an untrusted token names nobody


def test_the_portal_path_stays_and_the_provider_is_discoverable(
    demo_stack: DemoStack, portal: httpx.Client, citizen: httpx.Client, idp: DemoIdentityProvider
) -> None:
    r = portal.get(CITIZEN_LOG_PATH, headers={
        "X-Bus-Subject": ALICE.pinfl, "X-Bus-Purpose": "citizen-request"})
    assert r.status_code == 200 and r.json()["subject"] == mask_identifier(ALICE.pinfl)
    headerless = portal.get(CITIZEN_LOG_PATH)
    assert headerless.status_code == 400 and "X-Bus-Subject" in headerless.json()["detail"]
    discovery = citizen.get(f"{idp.issuer}/.well-known/openid-configuration").json()
    settings = demo_stack.node.settings.citizens
    assert settings is not None
    assert discovery["issuer"] == settings.issuer and discovery["jwks_uri"] == settings.jwks_url
    assert citizen.get(CITIZEN_LOG_PATH).status_code == 401  # no token at all
