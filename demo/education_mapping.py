"""Mapping of the education register's rows for the ``sql`` adapter.

Config: ``adapter: {kind: sql, map: demo.education_mapping.to_response, query: ...}`` with the
query text of ``demo.education_register.QUERY``. No rows means the register has never heard of
the person as a student: ``NoData`` (a certificate of study cannot be issued).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from adapters.base import NoData
from demo.education_register import FORMS, LEVELS, STATES
from schemas import Study, StudyCertificate, StudyCertificateRequest

__all__ = ["to_response"]

_LEVEL = {native: shared for shared, native in LEVELS.items()}
_FORM = {native: shared for shared, native in FORMS.items()}
_STATE = {native: shared for shared, native in STATES.items()}
_FUNDING = {"grant": "state-grant", "kontrakt": "contract"}


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)  # SQLite keeps dates as ISO text


def to_response(rows: list[dict[str, Any]], request: StudyCertificateRequest) -> StudyCertificate:
    if not rows:
        raise NoData("the education register holds no studies of the person")
    return StudyCertificate(
        pinfl=request.pinfl,
        full_name=rows[0]["fio"],
        studies=[
            Study(
                institution=row["nomi"],
                institution_stir=row["stir"],
                level=_LEVEL[row["turi"]],
                programme_code=row["yonalish_kodi"],
                programme=row["yonalish_nomi"],
                form=_FORM[row["shakl"]],
                course=row["kurs"],
                started_on=_date(row["boshlangan"]),
                ends_on=_date(row["tugash"]),
                status=_STATE[row["holat"]],
                funding=_FUNDING[row["tolov"]],
            )
            for row in rows
        ],
    )
