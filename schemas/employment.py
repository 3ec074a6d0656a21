"""Employment and pay, as recorded by the pension fund: the archive certificate of salary amounts
and length of service (for assigning a pension)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from schemas.base import SharedRequest, SharedResponse
from schemas.identifiers import PINFL, STIR

__all__ = [
    "EmploymentPeriod",
    "MonthlySalary",
    "SalaryCertificate",
    "SalaryCertificateRequest",
    "ServiceLength",
]


class SalaryCertificateRequest(SharedRequest):
    """Ask for a person's employment periods, with the monthly amounts of the years given
    (both years included; without them, every year on record; a range that ends before it
    begins holds no year, so the answer lists the periods without monthly amounts)."""

    pinfl: PINFL
    from_year: int | None = Field(default=None, ge=1950, le=2100)
    to_year: int | None = Field(default=None, ge=1950, le=2100)



class MonthlySalary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: str = Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    amount: Decimal = Field(ge=0, max_digits=14, decimal_places=2,
                            description="gross salary on which contributions were paid, UZS")


class EmploymentPeriod(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employer_stir: STIR
    employer_name: str = Field(max_length=300)
    position: str = Field(max_length=200)
    started_on: dt.date
    ended_on: dt.date | None = Field(default=None, description="absent: still employed there")
    monthly: list[MonthlySalary] = Field(
        max_length=1200, description="amounts of the months in the years asked, oldest first"
    )


class ServiceLength(BaseModel):
    model_config = ConfigDict(extra="forbid")

    years: int = Field(ge=0)
    months: int = Field(ge=0, le=11)
    days: int = Field(ge=0, le=30)


class SalaryCertificate(SharedResponse):
    """The archive certificate: every employment period on record and the length of service
    they add up to (as of ``as_of``)."""

    pinfl: PINFL
    full_name: str = Field(max_length=200)
    periods: list[EmploymentPeriod] = Field(max_length=100)
    total_service: ServiceLength
    as_of: dt.date
