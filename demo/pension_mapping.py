"""Mapping of the pension fund's SOAP operation ``GetIshHaqiMalumotnoma`` for the ``soap`` adapter.

Config: ``adapter: {kind: soap, operation: GetIshHaqiMalumotnoma, map: demo.pension_mapping}``.
The fund writes names in upper case, amounts as decimals of UZS, and the length of service it
counted as ``Staj`` (years, months, days). zeep hands ``to_response`` the output's only element,
``Malumotnoma``, as a dict.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from schemas import (
    EmploymentPeriod,
    MonthlySalary,
    SalaryCertificate,
    SalaryCertificateRequest,
    ServiceLength,
)

__all__ = ["to_request", "to_response"]

_PARTICLES = {"o'g'li", "qizi"}  # "son of", "daughter of": written in lower case


def _name(fio: str) -> str:
    words = [w.lower() for w in fio.split()]
    return " ".join(w if w in _PARTICLES else w[:1].upper() + w[1:] for w in words)


def to_request(request: SalaryCertificateRequest) -> dict[str, Any]:
    arguments: dict[str, Any] = {"JShShIR": request.pinfl}
    if request.from_year is not None:
        arguments["BoshYil"] = request.from_year
    if request.to_year is not None:
        arguments["OxirgiYil"] = request.to_year
    return arguments


def to_response(native: dict[str, Any], request: SalaryCertificateRequest) -> SalaryCertificate:
    if native["JShShIR"] != request.pinfl:
        raise ValueError("the fund answered about another person")
    staj = native["Staj"]
    return SalaryCertificate(
        pinfl=native["JShShIR"],
        full_name=_name(native["FIO"]),
        periods=[
            EmploymentPeriod(
                employer_stir=period["STIR"],
                employer_name=period["Tashkilot"],
                position=period["Lavozim"],
                started_on=period["Boshlangan"],
                ended_on=period.get("Tugagan"),
                monthly=[MonthlySalary(month=m["Sana"], amount=Decimal(m["Summa"]))
                         for m in period.get("Oy") or []],
            )
            for period in native["Davr"]
        ],
        total_service=ServiceLength(years=staj["Yil"], months=staj["Oy"], days=staj["Kun"]),
        as_of=native["Sana"],
    )
