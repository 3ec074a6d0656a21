"""Mapping of the residence registry's native JSON for the ``rest`` adapter.

Config: ``adapter: {kind: rest, map: demo.residence_mapping, ...}``. The JShShIR travels in the
path (``/api/v2/citizens/{pinfl}/registration``), so ``to_request`` sends no query parameters.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from schemas import Address, ResidenceRegistration, ResidenceRegistrationRequest

__all__ = ["to_request", "to_response"]

_KIND: dict[str, Literal["permanent", "temporary"]] = {
    "doimiy": "permanent", "vaqtincha": "temporary",
}
_PARTICLES = {"o'g'li", "qizi"}  # "son of", "daughter of": written in lower case


def to_request(request: ResidenceRegistrationRequest) -> dict[str, Any]:
    return {}


def _date(value: str | None) -> dt.date | None:
    return dt.datetime.strptime(value, "%d.%m.%Y").date() if value else None


def _name(fio: str) -> str:
    words = [w.lower() for w in fio.split()]
    return " ".join(w if w in _PARTICLES else w[:1].upper() + w[1:] for w in words)


def to_response(
    native: dict[str, Any], request: ResidenceRegistrationRequest
) -> ResidenceRegistration:
    if native["jshshir"] != request.pinfl:
        raise ValueError("the registry answered about another person")
    place = native["manzil"]
    registered_on = _date(native["qayd_sanasi"])
    if registered_on is None:
        raise ValueError("qayd_sanasi is empty")
    return ResidenceRegistration(
        pinfl=native["jshshir"],
        full_name=_name(native["fio"]),
        address=Address(
            region=place["viloyat"],
            district=place["tuman"],
            street=place["kucha"],
            house=place["uy"],
            apartment=place.get("xonadon") or None,
        ),
        kind=_KIND[native["turi"]],
        registered_on=registered_on,
        valid_until=_date(native.get("amal_muddati")),
    )
