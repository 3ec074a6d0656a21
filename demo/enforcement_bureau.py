"""Demo agency "enforcement-bureau": enforcement proceedings (MIB), over REST/JSON.

Its own SQLite database (``seed`` creates it from ``demo.records.CASES``), its own native format::

    GET /api/v1/qarzdorlik?jshshir=32902687140052        a person debtor, or
    GET /api/v1/qarzdorlik?stir=306112233                a legal person debtor (one of the two)
    200 {"qarzdor": {"turi": "jismoniy", "jshshir": "…"},     # or "yuridik" with "stir"
         "ishlar": [{"ish_raqami": "26/14/000311", "qozgatilgan": "10.02.2026",
                     "hujjat": "soliq_qarori", "hujjat_bergan": "…",
                     "undiruvchi": {"nomi": "…", "stir": "201777888"},   # stir null: a person
                     "summa": "4850000.00", "undirilgan": "1750000.00",
                     "cheklovlar": ["chet_elga_chiqish"]}],
         "jami_qoldiq": "21500000.00", "sana": "2026-12-04T10:15:00+05:00"}
    400 application/problem+json   neither or both keys, or a malformed one

Only open proceedings are listed; a debtor with none gets an empty ``ishlar`` (not a 404: "no
debts" is the answer). ``hujjat``: sud_buyrugi, ijro_varaqasi, soliq_qarori, notarial,
mamuriy_jarima; ``cheklovlar``: chet_elga_chiqish (travel ban), transport_hibsi (vehicle
seized), hisob_raqam (account frozen), mulk_taqiq (property ban).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from demo.agency_kit import problem, seed_sqlite
from demo.records import CASES

__all__ = ["DEBTS_PATH", "DOCUMENTS", "RESTRICTIONS", "create_app", "seed"]

DEBTS_PATH = "/api/v1/qarzdorlik"
DOCUMENTS = {"court-order": "sud_buyrugi", "writ-of-execution": "ijro_varaqasi",
             "tax-authority-decision": "soliq_qarori", "notarial-writ": "notarial",
             "administrative-fine": "mamuriy_jarima"}
RESTRICTIONS = {"travel-ban": "chet_elga_chiqish", "vehicle-seizure": "transport_hibsi",
                "account-freeze": "hisob_raqam", "property-ban": "mulk_taqiq"}
_TASHKENT = dt.timezone(dt.timedelta(hours=5))
_SCHEMA = """
CREATE TABLE ijro_ishi (
    ish_raqami TEXT PRIMARY KEY, qarzdor_jshshir TEXT, qarzdor_stir TEXT,
    qozgatilgan TEXT NOT NULL, hujjat TEXT NOT NULL, hujjat_bergan TEXT NOT NULL,
    undiruvchi TEXT NOT NULL, undiruvchi_stir TEXT,
    summa_tiyin INTEGER NOT NULL, undirilgan_tiyin INTEGER NOT NULL,
    cheklovlar TEXT NOT NULL DEFAULT '', tugatilgan TEXT,
    CHECK ((qarzdor_jshshir IS NULL) <> (qarzdor_stir IS NULL))
)
"""


def seed(db_path: Path) -> Path:
    """Create the bureau's database at ``db_path`` from ``demo.records.CASES`` unless it exists."""

    def fill(db: sqlite3.Connection) -> None:
        db.execute(_SCHEMA)
        db.executemany(
            "INSERT INTO ijro_ishi VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(c.number, c.debtor_pinfl, c.debtor_stir, c.opened_on.isoformat(),
              DOCUMENTS[c.document], c.issued_by, c.creditor_name, c.creditor_stir,
              int(c.amount_due * 100), int(c.amount_paid * 100),
              ",".join(RESTRICTIONS[r] for r in c.restrictions),
              c.closed_on.isoformat() if c.closed_on else None) for c in CASES],
        )

    return seed_sqlite(db_path, fill)


def _sum(tiyin: int) -> str:
    return f"{tiyin // 100}.{tiyin % 100:02d}"


def _case(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "ish_raqami": row["ish_raqami"],
        "qozgatilgan": dt.date.fromisoformat(row["qozgatilgan"]).strftime("%d.%m.%Y"),
        "hujjat": row["hujjat"],
        "hujjat_bergan": row["hujjat_bergan"],
        "undiruvchi": {"nomi": row["undiruvchi"], "stir": row["undiruvchi_stir"]},
        "summa": _sum(row["summa_tiyin"]),
        "undirilgan": _sum(row["undirilgan_tiyin"]),
        "cheklovlar": [r for r in row["cheklovlar"].split(",") if r],
    }


def create_app(
    db_path: Path, *, now: Callable[[], dt.datetime] = lambda: dt.datetime.now(_TASHKENT)
) -> FastAPI:
    """The bureau's HTTP API over the database at ``db_path`` (seeded if absent)."""
    uri = seed(db_path).absolute().as_uri() + "?mode=ro"
    app = FastAPI(title="Enforcement bureau (demo agency)")
    app.state.lookups = 0

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"holat": "ishlayapti"}

    @app.get(DEBTS_PATH)
    def debts(jshshir: str | None = None, stir: str | None = None) -> JSONResponse:
        app.state.lookups += 1
        if (jshshir is None) == (stir is None):
            return problem(400, "Bad Request", "jshshir yoki stir kerak (bittasi)")
        if jshshir is not None and not re.fullmatch(r"[0-9]{14}", jshshir):
            return problem(400, "Bad Request", "JShShIR 14 ta raqamdan iborat bo'lishi kerak")
        if stir is not None and not re.fullmatch(r"[0-9]{9}", stir):
            return problem(400, "Bad Request", "STIR 9 ta raqamdan iborat bo'lishi kerak")
        column, key = ("qarzdor_jshshir", jshshir) if jshshir else ("qarzdor_stir", stir)
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                f"SELECT * FROM ijro_ishi WHERE {column} = ? AND tugatilgan IS NULL "
                "ORDER BY qozgatilgan", (key,),
            ).fetchall()
        outstanding = sum(r["summa_tiyin"] - r["undirilgan_tiyin"] for r in rows)
        debtor = {"turi": "jismoniy", "jshshir": jshshir} if jshshir else \
            {"turi": "yuridik", "stir": stir}
        return JSONResponse({
            "qarzdor": debtor,
            "ishlar": [_case(r) for r in rows],
            "jami_qoldiq": _sum(outstanding),
            "sana": now().isoformat(timespec="seconds"),
        })

    return app
