"""Identifier types of persons (PINFL) and organisations (STIR).

Both are personal data: never log them; show them masked (``mask_identifier``).

* PINFL (JShShIR) — 14 digits: ``G DDMMYY RRR NNN C``: ``G`` century and sex (1-6), the date of
  birth, a district code, a serial and a check digit. We validate length, the leading digit and
  that the embedded date of birth exists. The check digit's algorithm is not published in a form
  we could confirm, so it is not enforced.
* STIR (INN) — 9 digits, not starting with 0.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import AfterValidator, Field

__all__ = [
    "PINFL",
    "PINFL_PATTERN",
    "STIR",
    "mask_identifier",
    "validate_pinfl",
    "validate_stir",
]

_PINFL_RE = re.compile(r"[1-6][0-9]{13}")
_STIR_RE = re.compile(r"[1-9][0-9]{8}")
_CENTURY = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}
# What ``validate_pinfl`` accepts, as one regular expression (for the JSON Schema, so that a
# client or a fuzzer knows the rule): the century digit, a date of birth that exists (29
# February only in leap years: 1800 and 1900 were not, 2000 was), then seven digits.
_DDMM = (
    r"(?:(?:0[1-9]|1[0-9]|2[0-8])(?:0[1-9]|1[0-2])|(?:29|30)(?:0[13-9]|1[0-2])"
    r"|31(?:0[13578]|1[02]))"
)
_LEAP_YY = r"(?:0[48]|[2468][048]|[13579][26])"
PINFL_PATTERN = (
    rf"^(?:[1-6]{_DDMM}[0-9]{{2}}|[1-6]2902{_LEAP_YY}|[56]290200)[0-9]{{7}}$"
)


def validate_pinfl(value: str) -> str:
    """Return ``value`` if it is a well-formed PINFL, else raise ``ValueError``."""
    if not _PINFL_RE.fullmatch(value):
        raise ValueError("PINFL must be 14 digits starting with 1-6")
    day, month, year = int(value[1:3]), int(value[3:5]), int(value[5:7])
    try:
        dt.date(_CENTURY[int(value[0])] + year, month, day)
    except ValueError:
        raise ValueError("PINFL digits 2-7 must be a valid date of birth (DDMMYY)") from None
    return value


def validate_stir(value: str) -> str:
    """Return ``value`` if it is a well-formed STIR, else raise ``ValueError``."""
    if not _STIR_RE.fullmatch(value):
        raise ValueError("STIR must be 9 digits not starting with 0")
    return value


PINFL = Annotated[
    str,
    Field(
        min_length=14,
        max_length=14,
        examples=["31505861234567"],
        description="Personal identification number (PINFL), 14 digits",
        json_schema_extra={"pattern": PINFL_PATTERN},
    ),
    AfterValidator(validate_pinfl),
]
STIR = Annotated[
    str,
    Field(
        min_length=9,
        max_length=9,
        examples=["301234567"],
        description="Taxpayer identification number (STIR), 9 digits",
        json_schema_extra={"pattern": f"^{_STIR_RE.pattern}$"},
    ),
    AfterValidator(validate_stir),
]


def mask_identifier(value: str | None) -> str:
    """Mask an identifier for display: keep the first and last two characters."""
    if not value:
        return "-"
    if len(value) <= 4:
        return "*" * len(value)
    return f"{value[:2]}{'*' * (len(value) - 4)}{value[-2:]}"
