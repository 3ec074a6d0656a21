"""Residence registration (propiska): where a person is registered to live, for how long and
with how many others, and the application for a permanent registration."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from schemas.base import SharedRequest, SharedResponse
from schemas.identifiers import PINFL

__all__ = [
    "Address",
    "PermanentRegistrationApplication",
    "PermanentRegistrationDecision",
    "ResidenceDuration",
    "ResidenceDurationRequest",
    "ResidenceRegistration",
    "ResidenceRegistrationRequest",
]


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region: str = Field(max_length=100)
    district: str = Field(max_length=100)
    street: str = Field(max_length=200)
    house: str = Field(max_length=20)
    apartment: str | None = Field(default=None, max_length=20)


class ResidenceRegistrationRequest(SharedRequest):
    """Ask for the current residence registration of a person."""

    pinfl: PINFL


class ResidenceRegistration(SharedResponse):
    """The person's current residence registration."""

    pinfl: PINFL
    full_name: str = Field(max_length=200)
    address: Address
    kind: Literal["permanent", "temporary"]
    registered_on: dt.date
    valid_until: dt.date | None = None


class ResidenceDurationRequest(SharedRequest):
    """Ask how long a person has lived at their registered address, and how many live there."""

    pinfl: PINFL


class ResidenceDuration(SharedResponse):
    """The certificate of length of residence and of the people registered at the address."""

    pinfl: PINFL
    full_name: str = Field(max_length=200)
    address: Address
    kind: Literal["permanent", "temporary"]
    registered_since: dt.date
    years: int = Field(ge=0, description="full years at the address as of as_of")
    months: int = Field(ge=0, le=11, description="and full months beyond them")
    residents: int = Field(ge=1, description="people registered at the address now")
    as_of: dt.date


class PermanentRegistrationApplication(SharedRequest):
    """An application for permanent residence registration (propiska) at an address.

    Transactional: ``application_id`` is the portal's id of the application, the same on every
    retry; the registry files an application once (a second filing is refused, naming the first).
    """

    application_id: UUID = Field(description="the portal's id of this application")
    pinfl: PINFL = Field(description="the applicant")
    address: Address
    ground: Literal["ownership", "owner-consent", "lease", "family-member"]
    owner_pinfl: PINFL | None = Field(default=None, description="the owner who consents")
    evidence: list[Annotated[str, Field(pattern=r"^[A-Z]{2,8}-[0-9]{4}-[0-9]{6,}-[0-9]$",
                                        max_length=40)]] = Field(
        default=[], max_length=10,
        description="request numbers of documents the bus issued for it (BUS-2026-000123-7)",
    )


class PermanentRegistrationDecision(SharedResponse):
    """An official's decision on an application for permanent registration."""

    application_id: UUID
    decision: Literal["registered", "refused"]
    decided_on: dt.date
    registered_on: dt.date | None = Field(default=None, description="when registered")
    reason: str | None = Field(default=None, max_length=500, description="when refused")
