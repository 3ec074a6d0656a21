"""Residence registration (propiska): where a person is registered to live."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.base import SharedRequest, SharedResponse
from schemas.identifiers import PINFL

__all__ = ["Address", "ResidenceRegistration", "ResidenceRegistrationRequest"]


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
