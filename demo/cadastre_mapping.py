"""Mapping of the cadastre's rows for the ``sql`` adapter.

Config: ``adapter: {kind: sql, map: demo.cadastre_mapping.to_response, query: ...}`` with the
query text of ``demo.cadastre.QUERY``.
No rows means the person owns nothing now: an empty list, which is a valid answer.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from schemas import OwnedProperty, PropertyOwnership, PropertyOwnershipRequest

__all__ = ["to_response"]

_KINDS: dict[int, Literal["apartment", "house", "land", "non-residential"]] = {
    1: "apartment", 2: "house", 3: "land", 4: "non-residential",
}
_CENT = Decimal("0.01")


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)  # SQLite keeps dates as ISO text


def to_response(rows: list[dict[str, Any]], request: PropertyOwnershipRequest) -> PropertyOwnership:
    return PropertyOwnership(
        pinfl=request.pinfl,
        properties=[
            OwnedProperty(
                cadastral_number=row["cadastral_no"],
                kind=_KINDS[int(row["kind_code"])],
                address=row["address"],
                area_m2=Decimal(str(row["area"])).quantize(_CENT),
                share=f"{int(row['share_num'])}/{int(row['share_den'])}",
                registered_on=_date(row["registered"]),
            )
            for row in rows
        ],
    )
