"""The parameters every asking route reads (a service, a bundle), declared once for FastAPI.

Headers ``X-Bus-Purpose`` (the legal purpose the access right requires), ``X-Bus-User`` (the
official or portal user on whose behalf), optionally ``X-Bus-Correlation`` (the conversation's
UUID); the query parameter ``mode`` (``sync``, or ``async``: 202 at once, the result kept).

What a caller sends here reaches the audit log and the node's log lines, so each is checked
before anything else sees it, and a value that does not pass is a 400 ``malformed-request``
naming the header (never echoing it): the purpose is a code such as ``child-benefit``
(``PURPOSE_PATTERN``); the user is printable ASCII of at most 200 characters, not blank, with no
control or line-separator characters (``USER_PATTERN``: a log line or an audit export cannot be
split or forged through it), and holds no run of 14 digits (a PINFL's shape) or 9 (a
STIR's): it names an official, and a personal identifier there would be stored unhashed in the
audit log and written to the logs (``personal_identifier``, ``NOT_A_PERSON``); a correlation
is a real UUID in its canonical lowercase form (``CORRELATION_PATTERN``).
"""
# No "from __future__ import annotations": FastAPI reads these annotations.

import re
from typing import Annotated, Literal

from fastapi import Header, Query
from pydantic import AfterValidator

__all__ = [
    "CORRELATION_PATTERN",
    "NOT_A_PERSON",
    "PERSONAL_PATTERN",
    "PURPOSE_PATTERN",
    "USER_PATTERN",
    "CorrelationHeader",
    "ModeQuery",
    "PurposeHeader",
    "UserHeader",
    "caller_value",
    "personal_identifier",
]

# A purpose code as access rights name them: a lowercase letter, then letters, digits, ".",
# "_" or "-", 1-100 in all (never a number such as a PINFL).
PURPOSE_PATTERN = r"^[a-z][a-z0-9._-]{0,99}$"
# Printable ASCII starting with a visible character, 1-200: no controls (tab, CR, LF), no DEL,
# no bytes past ASCII (where UTF-8's NEL and line separators would hide).
USER_PATTERN = r"^[!-~][ -~]{0,199}$"
# What X-Bus-User may not hold, though USER_PATTERN lets it through: a run of exactly 14 digits
# (a PINFL's shape) or 9 (a STIR's), alone or inside other text ("officer 31505862740013" would
# put the PINFL in the audit log as it is). A search, as JSON Schema's ``pattern`` is.
PERSONAL_PATTERN = r"(^|[^0-9])([0-9]{14}|[0-9]{9})([^0-9]|$)"
NOT_A_PERSON = ("X-Bus-User names the official or portal user on whose behalf, not a personal "
                "identifier (a PINFL or STIR): the person asked about goes in the body")
_PERSONAL = re.compile(PERSONAL_PATTERN)
# An RFC 9562 UUID (version 1-8, the RFC's variant), lowercase as the bus writes them.
CORRELATION_PATTERN = (
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)

PurposeHeader = Annotated[
    str,
    Header(alias="X-Bus-Purpose", pattern=PURPOSE_PATTERN,
           description="purpose code the access right requires (e.g. child-benefit)"),
]


def personal_identifier(value: str) -> bool:
    """Whether ``value`` holds a run of digits shaped as a PINFL (14) or a STIR (9)."""
    return _PERSONAL.search(value) is not None


def _an_official(value: str) -> str:
    if personal_identifier(value):
        raise ValueError(NOT_A_PERSON)  # the value itself is never echoed
    return value


UserHeader = Annotated[
    str,
    Header(alias="X-Bus-User", pattern=USER_PATTERN,
           description="official or portal user on whose behalf: printable, 1-200 "
                       "characters, no control or line-separator characters, and not a "
                       "personal identifier (no run of exactly 9 or 14 digits)"),
    AfterValidator(_an_official),
]
CorrelationHeader = Annotated[
    str | None,
    Header(alias="X-Bus-Correlation", pattern=CORRELATION_PATTERN,
           description="the conversation this request belongs to (a UUID, lowercase)"),
]
ModeQuery = Annotated[
    Literal["sync", "async"],
    Query(description="async: 202 at once, the result kept and found at the Location"),
]


def caller_value(value: str | None, pattern: str) -> str | None:
    """``value`` if it matches ``pattern`` (one of the above), else None: what a refusal's audit
    entry may take from a request that was refused before its headers were checked. A value
    holding a personal identifier is never taken, whatever ``pattern`` says — except a
    correlation: a random UUID's hex holds nine digits in a row now and then (about one in 150),
    and such a correlation must still reach its audit entry."""
    if value is None or re.fullmatch(pattern, value) is None:
        return None
    if pattern != CORRELATION_PATTERN and personal_identifier(value):
        return None
    return value
