"""Mapping of the enforcement bureau's native JSON for the ``rest`` adapter.

Config: ``adapter: {kind: rest, path: /api/v1/qarzdorlik, map: demo.enforcement_mapping}``.
The debtor's key goes as a query parameter: ``jshshir`` for a person, ``stir`` for a legal
person. Dates come as DD.MM.YYYY, amounts as decimal strings of UZS.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from demo.enforcement_bureau import DOCUMENTS, RESTRICTIONS
from schemas import Creditor, DebtCheck, DebtCheckRequest, EnforcementCase

__all__ = ["to_request", "to_response"]

_DOCUMENT = {native: shared for shared, native in DOCUMENTS.items()}
_RESTRICTION = {native: shared for shared, native in RESTRICTIONS.items()}


def to_request(request: DebtCheckRequest) -> dict[str, Any]:
    return {"jshshir": request.pinfl} if request.pinfl is not None else {"stir": request.stir}


def to_response(native: dict[str, Any], request: DebtCheckRequest) -> DebtCheck:
    debtor = native["qarzdor"]
    if debtor.get("jshshir") != request.pinfl or debtor.get("stir") != request.stir:
        raise ValueError("the bureau answered about another debtor")
    cases = [
        EnforcementCase(
            number=case["ish_raqami"],
            opened_on=dt.datetime.strptime(case["qozgatilgan"], "%d.%m.%Y").date(),
            document=_DOCUMENT[case["hujjat"]],
            issued_by=case["hujjat_bergan"],
            creditor=Creditor(name=case["undiruvchi"]["nomi"], stir=case["undiruvchi"]["stir"]),
            amount_due=Decimal(case["summa"]),
            amount_outstanding=Decimal(case["summa"]) - Decimal(case["undirilgan"]),
            restrictions=[_RESTRICTION[r] for r in case["cheklovlar"]],
        )
        for case in native["ishlar"]
    ]
    return DebtCheck(
        debtor_kind="person" if debtor["turi"] == "jismoniy" else "legal-person",
        pinfl=request.pinfl,
        stir=request.stir,
        cases=cases,
        total_outstanding=Decimal(native["jami_qoldiq"]),
        checked_at=dt.datetime.fromisoformat(native["sana"]),
    )
