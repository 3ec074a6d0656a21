"""Mapping of the social-protection agency's application API for the ``rest`` adapter (POST).

Config: ``adapter: {kind: rest, method: POST, path: /api/v1/arizalar, map:
demo.benefit_mapping}``. The application goes as the agency's JSON body; its receipt comes back
with the agency's own number (``raqam``) and the decision deadline as DD.MM.YYYY. The agency
de-duplicates on ``ariza_id`` (the portal's ``application_id``), so the bus may retry.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from schemas import ChildBirthBenefitApplication, ChildBirthBenefitReceipt

__all__ = ["to_request", "to_response"]

_STATUS: dict[str, Literal["received", "under-review", "granted", "refused"]] = {
    "qabul_qilindi": "received", "korib_chiqilmoqda": "under-review",
    "tayinlandi": "granted", "rad_etildi": "refused",
}


def to_request(request: ChildBirthBenefitApplication) -> dict[str, Any]:
    return {
        "ariza_id": str(request.application_id),
        "arizachi": request.applicant_pinfl,
        "bola": request.child_pinfl,
        "guvohnoma": request.birth_certificate,
        "hisob_raqam": request.bank_account,
        "dalillar": list(request.evidence),
    }


def to_response(
    native: dict[str, Any], request: ChildBirthBenefitApplication
) -> ChildBirthBenefitReceipt:
    if native["ariza_id"] != str(request.application_id):
        raise ValueError("the agency answered about another application")
    return ChildBirthBenefitReceipt(
        application_id=request.application_id,
        receipt_number=native["raqam"],
        received_at=dt.datetime.fromisoformat(native["qabul_qilingan"]),
        decision_due_on=dt.datetime.strptime(native["qaror_muddati"], "%d.%m.%Y").date(),
        status=_STATUS[native["holat"]],
    )
