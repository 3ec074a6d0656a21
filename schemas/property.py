"""Property ownership, as recorded by the cadastre."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.base import SharedRequest, SharedResponse
from schemas.identifiers import PINFL

__all__ = ["OwnedProperty", "PropertyOwnership", "PropertyOwnershipRequest"]


class PropertyOwnershipRequest(SharedRequest):
    """Ask which real estate a person owns."""

    pinfl: PINFL


class OwnedProperty(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cadastral_number: str = Field(
        pattern=r"^[0-9]{2}:[0-9]{2}:[0-9]{2}:[0-9]{2}:[0-9]{2}:[0-9]{4}$"
    )
    kind: Literal["apartment", "house", "land", "non-residential"]
    address: str = Field(max_length=300)
    area_m2: Decimal = Field(gt=0, max_digits=10, decimal_places=2)
    share: str = Field(pattern=r"^[0-9]+/[0-9]+$", description="ownership share, e.g. 1/2")
    registered_on: dt.date


class PropertyOwnership(SharedResponse):
    """All real estate the person owns (an empty list is a valid answer)."""

    pinfl: PINFL
    properties: list[OwnedProperty]
