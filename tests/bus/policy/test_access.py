"""Access rights: deny by default, purposes, explanations and field minimisation."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from bus.config.settings import AccessRight
from bus.core.errors import AccessDenied, RequestRefused
from bus.policy.access import AccessPolicy, minimise

RESIDENCE = "civil-registry/residence/v1"
PROPERTY = "cadastre/property/v1"


def right(client: str, service: str, purpose: list[str],
          fields: list[str] | None = None) -> AccessRight:
    return AccessRight(client=client, service=service, purpose=purpose, fields=fields)


@pytest.fixture
def policy() -> AccessPolicy:
    return AccessPolicy([
        right("portal", RESIDENCE, ["child-benefit", "pension"], ["pinfl", "address"]),
        right("portal", PROPERTY, ["housing-subsidy"]),
        right("tax-committee", RESIDENCE, ["tax-audit"], ["pinfl", "registered_on"]),
    ])


def denied(policy: AccessPolicy, client: str, service: str, purpose: str) -> AccessDenied:
    with pytest.raises(AccessDenied) as info:
        policy.check(client, service, purpose)
    assert isinstance(info.value, RequestRefused)
    assert (info.value.client, info.value.service) == (client, service)
    return info.value


# --- check ------------------------------------------------------------------------------------


def test_no_rights_denies_everything() -> None:
    error = denied(AccessPolicy([]), "portal", RESIDENCE, "child-benefit")
    assert "'portal' has no access right to 'civil-registry/residence/v1'" in error.detail


def test_a_matching_right_is_returned(policy: AccessPolicy) -> None:
    found = policy.check("portal", RESIDENCE, "pension")
    assert found.fields == ["pinfl", "address"]
    assert policy.check("portal", PROPERTY, "housing-subsidy").fields is None


@pytest.mark.parametrize(
    ("client", "service"),
    [
        ("archive", RESIDENCE),               # unknown client
        ("portal", "civil-registry/birth/v1"),  # service nobody granted
        ("tax-committee", PROPERTY),          # a right exists for the client, not this service
        ("portal", "civil-registry/residence/v2"),  # another version is another service
    ],
)
def test_deny_by_default(policy: AccessPolicy, client: str, service: str) -> None:
    error = denied(policy, client, service, "tax-audit")
    assert "has no access right" in error.detail


def test_another_clients_right_does_not_apply(policy: AccessPolicy) -> None:
    # tax-committee may ask RESIDENCE for tax-audit; the portal may not.
    error = denied(policy, "portal", RESIDENCE, "tax-audit")
    assert "purpose 'tax-audit' is not allowed" in error.detail


def test_right_for_another_purpose_names_the_allowed_ones(policy: AccessPolicy) -> None:
    error = denied(policy, "portal", RESIDENCE, "marketing")
    assert "purpose 'marketing' is not allowed for 'portal'" in error.detail
    assert "['child-benefit', 'pension']" in error.detail


@pytest.mark.parametrize("purpose", ["Child-Benefit", "child", "child-benefit ", ""])
def test_purpose_must_match_exactly(policy: AccessPolicy, purpose: str) -> None:
    denied(policy, "portal", RESIDENCE, purpose)


def test_two_rights_for_the_same_pair() -> None:
    policy = AccessPolicy([
        right("portal", RESIDENCE, ["pension"], ["pinfl"]),
        right("portal", RESIDENCE, ["child-benefit", "housing"], ["pinfl", "address", "kind"]),
    ])
    assert policy.check("portal", RESIDENCE, "pension").fields == ["pinfl"]
    assert policy.check("portal", RESIDENCE, "housing").fields == ["pinfl", "address", "kind"]
    error = denied(policy, "portal", RESIDENCE, "tax-audit")
    # every purpose of both rights is listed, once, sorted
    assert "(allowed: ['child-benefit', 'housing', 'pension'])" in error.detail


# --- explain ----------------------------------------------------------------------------------


def test_explain_allowed_with_fields(policy: AccessPolicy) -> None:
    assert policy.explain("portal", RESIDENCE, "pension") == (
        True,
        "allowed: portal may call civil-registry/residence/v1 for 'pension', "
        "seeing fields pinfl, address",
    )


def test_explain_allowed_with_all_fields(policy: AccessPolicy) -> None:
    ok, text = policy.explain("portal", PROPERTY, "housing-subsidy")
    assert ok
    assert text.endswith("seeing all fields")


def test_explain_denied(policy: AccessPolicy) -> None:
    assert policy.explain("archive", RESIDENCE, "pension") == (
        False, "denied: 'archive' has no access right to 'civil-registry/residence/v1'"
    )
    ok, text = policy.explain("portal", RESIDENCE, "marketing")
    assert not ok
    assert text.startswith("denied: purpose 'marketing' is not allowed")
    assert "child-benefit" in text


# --- minimise ---------------------------------------------------------------------------------

PAYLOAD = {
    "pinfl": "31505861234567",
    "full_name": "Karimova Dilnoza",
    "address": {"region": "Toshkent", "street": "Amir Temur", "house": "107B"},
    "registered_on": "2015-03-02",
}


def test_minimise_keeps_only_allowed_fields() -> None:
    original = copy.deepcopy(PAYLOAD)
    assert minimise(PAYLOAD, ["pinfl", "address"]) == {
        "pinfl": PAYLOAD["pinfl"], "address": PAYLOAD["address"]
    }
    assert original == PAYLOAD  # the input is left alone


def test_minimise_everything_when_fields_is_none() -> None:
    assert minimise(PAYLOAD, None) == PAYLOAD


def test_minimise_with_no_fields_keeps_nothing() -> None:
    assert minimise(PAYLOAD, []) == {}


def test_minimise_ignores_fields_the_payload_lacks() -> None:
    assert minimise(PAYLOAD, ["pinfl", "passport"]) == {"pinfl": PAYLOAD["pinfl"]}


def test_minimise_is_by_exact_top_level_name() -> None:
    # "address.region" does not select a nested field, and "pin" is not a prefix match.
    assert minimise(PAYLOAD, ["address.region", "pin", "PINFL"]) == {}


def test_policy_and_minimise_together(policy: AccessPolicy) -> None:
    granted = policy.check("tax-committee", RESIDENCE, "tax-audit")
    assert minimise(PAYLOAD, granted.fields) == {
        "pinfl": "31505861234567", "registered_on": "2015-03-02"
    }


# --- validity window ---------------------------------------------------------------------------

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def windowed(**window: dt.datetime) -> AccessPolicy:
    return AccessPolicy(
        [AccessRight(client="portal", service=RESIDENCE, purpose=["pension"], **window)],
        clock=lambda: T0,
    )


def test_a_right_inside_its_window_applies() -> None:
    policy = windowed(valid_from=T0 - dt.timedelta(days=1), valid_until=T0 + dt.timedelta(days=1))
    assert policy.check("portal", RESIDENCE, "pension").purpose == ["pension"]


def test_a_right_before_its_window_is_denied() -> None:
    policy = windowed(valid_from=T0 + dt.timedelta(seconds=1))
    error = denied(policy, "portal", RESIDENCE, "pension")
    assert error.reason == "not-yet-valid"
    assert "valid only from 2026-03-01T00:00:01+00:00" in error.detail


def test_a_right_after_its_window_is_denied() -> None:
    policy = windowed(valid_until=T0)  # the end is excluded
    error = denied(policy, "portal", RESIDENCE, "pension")
    assert error.reason == "expired-right"
    assert "ended at 2026-03-01T00:00:00+00:00" in error.detail
    # the same right, asked about at an earlier time
    assert policy.check("portal", RESIDENCE, "pension", at=T0 - dt.timedelta(seconds=1))


def test_an_expired_right_and_a_valid_one_for_the_same_purpose() -> None:
    policy = AccessPolicy(
        [
            right("portal", RESIDENCE, ["pension"], ["pinfl"]).model_copy(
                update={"valid_until": T0 - dt.timedelta(days=30)}
            ),
            right("portal", RESIDENCE, ["pension"], ["pinfl", "address"]).model_copy(
                update={"valid_from": T0 - dt.timedelta(days=30)}
            ),
        ],
        clock=lambda: T0,
    )
    assert policy.check("portal", RESIDENCE, "pension").fields == ["pinfl", "address"]


def test_a_window_must_not_be_inverted() -> None:
    with pytest.raises(ValueError, match="valid_until must be later than valid_from"):
        AccessRight(
            client="portal", service=RESIDENCE, purpose=["pension"],
            valid_from=T0, valid_until=T0,
        )


def test_a_window_needs_a_time_zone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        AccessRight(
            client="portal", service=RESIDENCE, purpose=["pension"],
            valid_from=dt.datetime(2026, 1, 1),
        )


def test_explain_names_the_window() -> None:
    policy = windowed(valid_until=T0 + dt.timedelta(days=1))
    ok, text = policy.explain("portal", RESIDENCE, "pension")
    assert ok and text.endswith("until 2026-03-02T00:00:00+00:00")
    ok, text = policy.explain("portal", RESIDENCE, "pension", at=T0 + dt.timedelta(days=2))
    assert not ok and "ended at" in text
