"""Mapping of the civil registry's SOAP operation ``GetBirthRecord`` for the ``soap`` adapter.

Config: ``adapter: {kind: soap, operation: GetBirthRecord, map: demo.civil_mapping, ...}``.
The registry is asked by the child's JShShIR or by the certificate's series and number; it
writes names in upper case, sex as E (erkak, male) / A (ayol, female), and the parents as
optional ``Ota``/``Ona`` elements. zeep hands ``to_response`` the output's only element,
``Yozuv``, as a dict.
"""

from __future__ import annotations

from typing import Any

from schemas import BirthCertificate, BirthCertificateRequest, Child, Parent

__all__ = ["to_request", "to_response"]

_SEX = {"E": "male", "A": "female"}
_PARTICLES = {"o'g'li", "qizi"}  # "son of", "daughter of": written in lower case


def to_request(request: BirthCertificateRequest) -> dict[str, Any]:
    if request.pinfl is not None:
        return {"JShShIR": request.pinfl}
    assert request.number is not None  # the request model requires one of both
    series, _, number = request.number.partition(" ")
    return {"Guvohnoma": {"Seriya": series, "Raqam": number}}


def _name(*words: str) -> str:
    lowered = " ".join(words).lower().split()
    return " ".join(w if w in _PARTICLES else w[:1].upper() + w[1:] for w in lowered)


def to_response(native: dict[str, Any], request: BirthCertificateRequest) -> BirthCertificate:
    record = native  # zeep unwraps an output element holding one element (Yozuv)
    number = f"{record['Seriya']} {record['Raqam']}"
    child = record["Bola"]
    if request.pinfl is not None and child["JShShIR"] != request.pinfl:
        raise ValueError("the registry answered about another child")
    if request.number is not None and number != request.number:
        raise ValueError("the registry answered with another certificate")
    parents = [
        Parent(role=role, full_name=_name(who["FIO"]), pinfl=who.get("JShShIR"))
        for role, key in (("father", "Ota"), ("mother", "Ona"))
        if (who := record.get(key)) is not None
    ]
    return BirthCertificate(
        number=number,
        child=Child(
            pinfl=child["JShShIR"],
            full_name=_name(child["Familiya"], child["Ism"], child["OtasiningIsmi"]),
            born_on=child["TugilganSana"],
            sex=_SEX[child["Jinsi"]],
            place_of_birth=child["TugilganJoyi"],
        ),
        parents=parents,
        registered_on=record["QaydSanasi"],
        registry_office=record["FHDYOBolimi"],
    )
