"""The parameters every asking route reads (a service, a bundle), declared once for FastAPI.

Headers ``X-Bus-Purpose`` (the legal purpose the access right requires), ``X-Bus-User`` (the
official or portal user on whose behalf), optionally ``X-Bus-Correlation`` (the conversation's
UUID); the query parameter ``mode`` (``sync``, or ``async``: 202 at once, the result kept).
"""
# No "from __future__ import annotations": FastAPI reads these annotations.

from typing import Annotated, Literal

from fastapi import Header, Query

__all__ = ["CorrelationHeader", "ModeQuery", "PurposeHeader", "UserHeader"]

PurposeHeader = Annotated[
    str,
    Header(alias="X-Bus-Purpose", max_length=100,
           description="purpose code the access right requires"),
]
UserHeader = Annotated[
    str,
    Header(alias="X-Bus-User", max_length=200,
           description="official or portal user on whose behalf"),
]
CorrelationHeader = Annotated[
    str | None,
    Header(alias="X-Bus-Correlation", pattern=r"^[0-9a-f-]{36}$",
           description="the conversation this request belongs to (a UUID)"),
]
ModeQuery = Annotated[
    Literal["sync", "async"],
    Query(description="async: 202 at once, the result kept and found at the Location"),
]
