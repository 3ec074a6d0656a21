"""Demo agency "residence-registry": the interior ministry's propiska records, over REST/JSON.

It keeps its own SQLite database (``seed`` creates it from ``demo.data``) and answers in its own
native format, which is deliberately not the shared schema::

    GET /api/v2/citizens/{jshshir}/registration
    200 {"jshshir": "31505862740013",
         "fio": "KARIMOV AZIZ RUSTAMOVICH",                    # upper case, surname first
         "manzil": {"viloyat": "Toshkent shahri", "tuman": "Yunusobod tumani",
                    "kucha": "Amir Temur ko'chasi", "uy": "108", "xonadon": "45"},  # "" if none
         "turi": "doimiy",                                     # or "vaqtincha" (temporary)
         "qayd_sanasi": "02.04.2015",                          # DD.MM.YYYY
         "amal_muddati": null}                                 # DD.MM.YYYY for temporary ones
    404 application/problem+json   nobody registered under that JShShIR
    400 application/problem+json   not 14 digits

    GET /api/v2/citizens/{jshshir}/address-certificate     length of residence, residents
    200 {"jshshir": …, "fio": …, "manzil": {…}, "turi": "doimiy", "qayd_sanasi": "02.04.2015",
         "yashash_muddati": {"yil": 11, "oy": 8},             # full years and months to today
         "yashovchilar_soni": 4,                              # registered at that address now
         "sana": "04.12.2026"}                                # today (``today``, injectable)
    404 / 400 as above

    GET /health -> {"holat": "ishlayapti"}        GET /docs: its OpenAPI page

The registry's journal (``app.state.message_ids``) keeps the ``X-Bus-Message-Id`` header of
every lookup (None when absent), which is how an agency sees that the bus delivered a request
twice: the same id comes again.

``create_app(db_path)`` builds the FastAPI app (seeding the database if the file is absent);
serve it with ``demo.servers.serve_in_thread`` or any ASGI server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

from demo.agency_kit import problem, seed_sqlite
from demo.data import PEOPLE
from demo.records import HOUSEHOLD

__all__ = ["CERTIFICATE_PATH", "REGISTRATION_PATH", "create_app", "seed"]

REGISTRATION_PATH = "/api/v2/citizens/{jshshir}/registration"
CERTIFICATE_PATH = "/api/v2/citizens/{jshshir}/address-certificate"
_KIND = {"permanent": "doimiy", "temporary": "vaqtincha"}
_SCHEMA = """
CREATE TABLE propiska (
    jshshir TEXT PRIMARY KEY,
    familiya TEXT NOT NULL, ism TEXT NOT NULL, otasining_ismi TEXT NOT NULL,
    viloyat TEXT NOT NULL, tuman TEXT NOT NULL, kucha TEXT NOT NULL, uy TEXT NOT NULL,
    xonadon TEXT NOT NULL DEFAULT '',
    turi TEXT NOT NULL CHECK (turi IN ('doimiy', 'vaqtincha')),
    qayd_sanasi TEXT NOT NULL,
    amal_muddati TEXT
)
"""


def seed(db_path: Path) -> Path:
    """Create the registry's database at ``db_path`` from ``demo.data`` unless it exists."""

    def fill(db: sqlite3.Connection) -> None:
        db.execute(_SCHEMA)
        db.executemany(
            "INSERT INTO propiska VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (p.pinfl, p.surname, p.given_name, p.patronymic, r.region, r.district,
                 r.street, r.house, r.apartment or "", _KIND[r.kind],
                 r.registered_on.isoformat(),
                 r.valid_until.isoformat() if r.valid_until else None)
                for p in (*PEOPLE, *HOUSEHOLD)
                if (r := p.residence) is not None
            ],
        )

    return seed_sqlite(db_path, fill)


def _native_date(iso: str | None) -> str | None:
    return dt.date.fromisoformat(iso).strftime("%d.%m.%Y") if iso else None


def _native(row: sqlite3.Row) -> dict[str, Any]:
    fio = " ".join((row["familiya"], row["ism"], row["otasining_ismi"]))
    return {
        "jshshir": row["jshshir"],
        "fio": fio.upper(),
        "manzil": {
            "viloyat": row["viloyat"],
            "tuman": row["tuman"],
            "kucha": row["kucha"],
            "uy": row["uy"],
            "xonadon": row["xonadon"],
        },
        "turi": row["turi"],
        "qayd_sanasi": _native_date(row["qayd_sanasi"]),
        "amal_muddati": _native_date(row["amal_muddati"]),
    }


def _full_months(since: dt.date, today: dt.date) -> int:
    months = (today.year - since.year) * 12 + today.month - since.month
    return max(0, months - (today.day < since.day))


def create_app(db_path: Path, *, today: Callable[[], dt.date] = dt.date.today) -> FastAPI:
    """The registry's HTTP API over the database at ``db_path`` (seeded if absent)."""
    db_path = seed(db_path)
    uri = db_path.absolute().as_uri() + "?mode=ro"
    app = FastAPI(title="Residence registry (demo agency)")
    app.state.lookups = 0  # the registry's own count of lookups served, as its journal would show

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"holat": "ishlayapti"}

    app.state.message_ids = []  # the journal: the bus message id of each lookup, in order

    @app.get(REGISTRATION_PATH)
    def registration(
        jshshir: str, message_id: Annotated[str | None, Header(alias="X-Bus-Message-Id")] = None
    ) -> JSONResponse:
        app.state.lookups += 1
        app.state.message_ids.append(message_id)
        if not re.fullmatch(r"[0-9]{14}", jshshir):
            return problem(400, "Bad Request", "JShShIR 14 ta raqamdan iborat bo'lishi kerak")
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM propiska WHERE jshshir = ?", (jshshir,)).fetchone()
        if row is None:
            return problem(404, "Not Found", "Fuqaro ro'yxatda topilmadi")
        return JSONResponse(_native(row))

    @app.get(CERTIFICATE_PATH)
    def certificate(jshshir: str) -> JSONResponse:
        app.state.lookups += 1
        if not re.fullmatch(r"[0-9]{14}", jshshir):
            return problem(400, "Bad Request", "JShShIR 14 ta raqamdan iborat bo'lishi kerak")
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM propiska WHERE jshshir = ?", (jshshir,)).fetchone()
            if row is None:
                return problem(404, "Not Found", "Fuqaro ro'yxatda topilmadi")
            residents = db.execute(
                "SELECT COUNT(*) FROM propiska WHERE viloyat = ? AND tuman = ? AND kucha = ? "
                "AND uy = ? AND xonadon = ?",
                (row["viloyat"], row["tuman"], row["kucha"], row["uy"], row["xonadon"]),
            ).fetchone()[0]
        now = today()
        months = _full_months(dt.date.fromisoformat(row["qayd_sanasi"]), now)
        return JSONResponse({
            **_native(row),
            "yashash_muddati": {"yil": months // 12, "oy": months % 12},
            "yashovchilar_soni": residents,
            "sana": now.strftime("%d.%m.%Y"),
        })

    return app
