"""Mapping of the residence registry's address certificate for the ``rest`` adapter.

Config: ``adapter: {kind: rest, path: /api/v2/citizens/{pinfl}/address-certificate,
map: demo.residence_duration_mapping}``. The registry counts the length of residence (full
years and months) and the people registered at the address; dates come as DD.MM.YYYY.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from demo.residence_mapping import to_response as registration
from schemas import (
    ResidenceDuration,
    ResidenceDurationRequest,
    ResidenceRegistrationRequest,
)

__all__ = ["to_request", "to_response"]


def to_request(request: ResidenceDurationRequest) -> dict[str, Any]:
    return {}


def to_response(native: dict[str, Any], request: ResidenceDurationRequest) -> ResidenceDuration:
    current = registration(native, ResidenceRegistrationRequest(pinfl=request.pinfl))
    length = native["yashash_muddati"]
    return ResidenceDuration(
        pinfl=current.pinfl,
        full_name=current.full_name,
        address=current.address,
        kind=current.kind,
        registered_since=current.registered_on,
        years=length["yil"],
        months=length["oy"],
        residents=native["yashovchilar_soni"],
        as_of=dt.datetime.strptime(native["sana"], "%d.%m.%Y").date(),
    )
