"""Mapping of the social register's eligibility answer for the ``rest`` adapter.

Config: ``adapter: {kind: rest, path: /api/v1/reestr/{pinfl}/huquq, map: demo.social_mapping}``.
A person is eligible when the register lists them (or their family); someone it does not list
is a valid answer: not eligible, ``not-in-register``.
"""

from __future__ import annotations

from typing import Any

from demo.social_protection import REASONS
from schemas import BenefitEligibility, BenefitEligibilityRequest

__all__ = ["to_request", "to_response"]

_REASON = {native: shared for shared, native in REASONS.items()}


def to_request(request: BenefitEligibilityRequest) -> dict[str, Any]:
    return {}


def to_response(
    native: dict[str, Any], request: BenefitEligibilityRequest
) -> BenefitEligibility:
    if native["jshshir"] != request.pinfl:
        raise ValueError("the register answered about another person")
    listed = bool(native["reestrda"])
    return BenefitEligibility(
        pinfl=request.pinfl,
        eligible=listed,
        in_social_register=listed,
        register_number=native["reestr_raqami"],
        reasons=[_REASON[native["asos"]]] if listed else ["not-in-register"],
        birth_benefit_paid_for=native["tolangan"],
    )
