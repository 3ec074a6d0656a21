"""Studies at higher and secondary special education institutions, as the education register
holds them: the certificate of study (spravka) a student is asked for."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.base import SharedRequest, SharedResponse
from schemas.identifiers import PINFL, STIR

__all__ = ["Study", "StudyCertificate", "StudyCertificateRequest"]


class StudyCertificateRequest(SharedRequest):
    """Ask where a person studies or studied."""

    pinfl: PINFL


class Study(BaseModel):
    model_config = ConfigDict(extra="forbid")

    institution: str = Field(max_length=300)
    institution_stir: STIR
    level: Literal["higher", "secondary-special"]
    programme_code: str = Field(pattern=r"^[0-9]{5,8}$", description="classifier code")
    programme: str = Field(max_length=300)
    form: Literal["full-time", "part-time", "evening", "distance"]
    course: int | None = Field(default=None, ge=1, le=7, description="year of study now")
    started_on: dt.date
    ends_on: dt.date = Field(description="graduation: done or expected")
    status: Literal["studying", "academic-leave", "graduated", "expelled"]
    funding: Literal["state-grant", "contract"]


class StudyCertificate(SharedResponse):
    """Every study of the person on record, the current one first."""

    pinfl: PINFL
    full_name: str = Field(max_length=200)
    studies: list[Study] = Field(min_length=1, max_length=20)
