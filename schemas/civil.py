"""Civil registration: birth certificates, as recorded by the civil registry offices (FHDYO)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.base import SharedRequest, SharedResponse, exactly_one_of
from schemas.identifiers import PINFL

__all__ = [
    "CERTIFICATE_NUMBER_PATTERN",
    "BirthCertificate",
    "BirthCertificateRequest",
    "Child",
    "Parent",
]

#: Series and number of a birth certificate, e.g. ``I-TN 0451207``.
CERTIFICATE_NUMBER_PATTERN = r"^[A-Z]{1,3}-[A-Z]{2} [0-9]{7}$"


class BirthCertificateRequest(SharedRequest):
    """Ask for a birth certificate by the child's PINFL or by the certificate's number (one)."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("pinfl", "number"))

    pinfl: PINFL | None = Field(default=None, description="PINFL of the child")
    number: str | None = Field(
        default=None,
        pattern=CERTIFICATE_NUMBER_PATTERN,
        description="series and number of the certificate, e.g. I-TN 0451207",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> BirthCertificateRequest:
        if (self.pinfl is None) == (self.number is None):
            raise ValueError("give either pinfl or number (exactly one)")
        return self

    def subject(self) -> str:
        """The child's PINFL, or the certificate number when asked by number."""
        return str(self.pinfl if self.pinfl is not None else self.number)


class Child(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pinfl: PINFL
    full_name: str = Field(max_length=200)
    born_on: dt.date
    sex: Literal["male", "female"]
    place_of_birth: str = Field(max_length=200)


class Parent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["mother", "father"]
    full_name: str = Field(max_length=200)
    pinfl: PINFL | None = Field(default=None, description="absent when the registry has none")


class BirthCertificate(SharedResponse):
    """A birth as registered: the certificate, the child, the parents and the office."""

    number: str = Field(
        pattern=CERTIFICATE_NUMBER_PATTERN,
        description="series and number of the certificate, e.g. I-TN 0451207",
    )
    child: Child
    parents: list[Parent] = Field(max_length=2)
    registered_on: dt.date
    registry_office: str = Field(max_length=200)

    def other_subject(self, request: SharedRequest) -> str | None:
        """Asked by the child's PINFL, the child must be that child; asked by number, the
        certificate must be that one."""
        pinfl, number = getattr(request, "pinfl", None), getattr(request, "number", None)
        if pinfl is not None and self.child.pinfl != pinfl:
            return "child.pinfl"
        if number is not None and self.number != number:
            return "number"
        return None
