"""Debts under enforcement documents, as the enforcement bureau (MIB) holds them.

The debtor is a person (PINFL) or a legal person (STIR). Only open enforcement proceedings are
listed; a debtor with none is a valid answer (``cases`` empty).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.base import SharedRequest, SharedResponse
from schemas.identifiers import PINFL, STIR

__all__ = ["Creditor", "DebtCheck", "DebtCheckRequest", "EnforcementCase"]

_Money = Decimal


class DebtCheckRequest(SharedRequest):
    """Ask about a person's debts by PINFL, or a legal person's by STIR (exactly one)."""

    # The JSON Schema says "exactly one" too: one of the two present as a string.
    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["pinfl"], "properties": {"pinfl": {"type": "string"}}},
        {"required": ["stir"], "properties": {"stir": {"type": "string"}}},
    ]})

    pinfl: PINFL | None = Field(default=None, description="a person debtor")
    stir: STIR | None = Field(default=None, description="a legal person debtor")

    @model_validator(mode="after")
    def _exactly_one(self) -> DebtCheckRequest:
        if (self.pinfl is None) == (self.stir is None):
            raise ValueError("give either pinfl or stir (exactly one)")
        return self

    def subject(self) -> str:
        """The debtor's PINFL or STIR."""
        return str(self.pinfl if self.pinfl is not None else self.stir)


class Creditor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=300)
    stir: STIR | None = Field(default=None, description="absent for a person creditor")


class EnforcementCase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(pattern=r"^[0-9]{2}/[0-9]{2}/[0-9]{6}$", description="e.g. 26/04/001234")
    opened_on: dt.date
    document: Literal["court-order", "writ-of-execution", "tax-authority-decision",
                      "notarial-writ", "administrative-fine"]
    issued_by: str = Field(max_length=300)
    creditor: Creditor
    amount_due: _Money = Field(ge=0, max_digits=16, decimal_places=2, description="UZS")
    amount_outstanding: _Money = Field(ge=0, max_digits=16, decimal_places=2, description="UZS")
    restrictions: list[Literal["travel-ban", "vehicle-seizure", "account-freeze",
                               "property-ban"]] = Field(default=[], max_length=4)


class DebtCheck(SharedResponse):
    """The debtor's open enforcement cases and the total outstanding."""

    debtor_kind: Literal["person", "legal-person"]
    pinfl: PINFL | None = None
    stir: STIR | None = None
    cases: list[EnforcementCase] = Field(max_length=200)
    total_outstanding: _Money = Field(ge=0, max_digits=18, decimal_places=2, description="UZS")
    checked_at: dt.datetime
