"""Social protection: benefit eligibility from the social register, and the one-time child-birth
benefit application with the agency's receipt.

The application is transactional: the portal submits it once it holds the evidence (a birth
certificate, the applicant's residence, both parents' eligibility, fetched as one once-only
bundle); the agency records it and answers a receipt with its own number and the date by which
it decides. ``application_id`` is the portal's id of the application, the same on every retry:
the agency records an application once and answers a retry with the same receipt.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import Field

from schemas.base import SharedRequest, SharedResponse
from schemas.civil import CERTIFICATE_NUMBER_PATTERN
from schemas.identifiers import PINFL

__all__ = [
    "EVIDENCE_NUMBER_PATTERN",
    "BenefitEligibility",
    "BenefitEligibilityRequest",
    "ChildBirthBenefitApplication",
    "ChildBirthBenefitReceipt",
    "EvidenceNumber",
]

#: A request number the bus gives every answer it delivers (``BUS-2026-000123-7``).
EVIDENCE_NUMBER_PATTERN = r"^[A-Z]{2,8}-[0-9]{4}-[0-9]{6,}-[0-9]$"
EvidenceNumber = Annotated[str, Field(pattern=EVIDENCE_NUMBER_PATTERN, max_length=40)]


class BenefitEligibilityRequest(SharedRequest):
    """Ask whether a person may receive social benefits, as the social register says."""

    pinfl: PINFL


class BenefitEligibility(SharedResponse):
    """What the social register holds about a person's eligibility for benefits."""

    pinfl: PINFL
    eligible: bool
    in_social_register: bool = Field(description="the family is in the social register")
    register_number: str | None = Field(default=None, max_length=30)
    reasons: list[Literal["low-income-family", "disability", "single-parent",
                          "not-in-register"]] = Field(max_length=4)
    birth_benefit_paid_for: list[PINFL] = Field(
        default=[], max_length=20, description="children a one-time birth benefit was paid for"
    )


class ChildBirthBenefitApplication(SharedRequest):
    """An application for the one-time child-birth benefit, with the evidence the bus issued."""

    subject_field: ClassVar[str] = "applicant_pinfl"

    application_id: UUID = Field(description="the portal's id of this application")
    applicant_pinfl: PINFL
    child_pinfl: PINFL
    birth_certificate: str = Field(pattern=CERTIFICATE_NUMBER_PATTERN)
    bank_account: str = Field(pattern=r"^[0-9]{20}$", description="where to pay, 20 digits")
    evidence: list[EvidenceNumber] = Field(
        min_length=1, max_length=10,
        description="request numbers of the documents the bus issued for it",
    )


class ChildBirthBenefitReceipt(SharedResponse):
    """The agency's receipt: the application is recorded under its own number."""

    application_id: UUID
    receipt_number: str = Field(pattern=r"^[A-Z]{2,4}-[0-9]{4}-[0-9]{6}$")
    received_at: dt.datetime
    decision_due_on: dt.date
    status: Literal["received", "under-review", "granted", "refused"]
