"""Demo agency "social-protection": the social register and benefit applications, over REST/JSON.

Its own SQLite database (``seed`` creates it from ``demo.records``): the register of families
entitled to social benefits, the benefits paid, and the applications it has received. It reads
the register and records applications, in its own native format::

    GET  /api/v1/reestr/{jshshir}/huquq         eligibility, as the register says
    200 {"jshshir": …, "reestrda": true, "reestr_raqami": "IHR-10-0045871",
         "asos": "kam_taminlangan",        # or "nogironlik", "yolgiz_ota_ona"; null: not listed
         "tolangan": ["61203186540019"]}   # children a one-time birth benefit was paid for

    POST /api/v1/arizalar                        an application for the child-birth benefit
         {"ariza_id": "<uuid>", "arizachi": "<jshshir>", "bola": "<jshshir>",
          "guvohnoma": "I-TN 1187302", "hisob_raqam": "<20 digits>", "dalillar": ["BUS-…"]}
    201 {"ariza_id": …, "raqam": "IH-2026-000001", "qabul_qilingan": "<ISO datetime>",
         "qaror_muddati": "14.12.2026", "holat": "qabul_qilindi"}
    200 the same receipt again   when ``ariza_id`` was received before with the same content
    409 application/problem+json the same ``ariza_id`` with other content
    400 application/problem+json a body it cannot read

``ariza_id`` is what the agency de-duplicates on: whoever retries (the portal, or the bus after
a timeout), an application is recorded once and keeps its one number. The decision is due
``DECISION_DAYS`` after receipt. ``create_app(db, now=…)`` takes the agency's clock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from demo.agency_kit import problem, seed_sqlite
from demo.records import BENEFIT_PAID, SOCIAL_REGISTER

__all__ = ["APPLICATIONS_PATH", "DECISION_DAYS", "ELIGIBILITY_PATH", "REASONS",
           "applications_recorded", "create_app", "seed"]

ELIGIBILITY_PATH = "/api/v1/reestr/{jshshir}/huquq"
APPLICATIONS_PATH = "/api/v1/arizalar"
DECISION_DAYS = 10
REASONS = {"low-income-family": "kam_taminlangan", "disability": "nogironlik",
           "single-parent": "yolgiz_ota_ona"}
_TASHKENT = dt.timezone(dt.timedelta(hours=5))
_SCHEMA = """
CREATE TABLE reestr (jshshir TEXT PRIMARY KEY, raqam TEXT NOT NULL, asos TEXT NOT NULL,
                     kiritilgan TEXT NOT NULL);
CREATE TABLE tolovlar (ota_ona TEXT NOT NULL, bola TEXT NOT NULL, turi TEXT NOT NULL,
                       PRIMARY KEY (ota_ona, bola, turi));
CREATE TABLE arizalar (
    raqam TEXT PRIMARY KEY, ariza_id TEXT NOT NULL UNIQUE, mazmun TEXT NOT NULL,
    arizachi TEXT NOT NULL, qabul_qilingan TEXT NOT NULL, qaror_muddati TEXT NOT NULL,
    holat TEXT NOT NULL
);
"""
_FIELDS = {"ariza_id": r"[0-9a-f-]{36}", "arizachi": r"[0-9]{14}", "bola": r"[0-9]{14}",
           "guvohnoma": r"[A-Z]{1,3}-[A-Z]{2} [0-9]{7}", "hisob_raqam": r"[0-9]{20}"}


def seed(db_path: Path) -> Path:
    """Create the agency's database at ``db_path`` unless it exists (no applications yet)."""

    def fill(db: sqlite3.Connection) -> None:
        db.executescript(_SCHEMA)
        db.executemany("INSERT INTO reestr VALUES (?, ?, ?, ?)", [
            (e.pinfl, e.number, REASONS[e.reason], e.since.isoformat())
            for e in SOCIAL_REGISTER])
        db.executemany("INSERT INTO tolovlar VALUES (?, ?, 'tugilish')", BENEFIT_PAID)

    return seed_sqlite(db_path, fill)


def _receipt(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "ariza_id": row["ariza_id"],
        "raqam": row["raqam"],
        "qabul_qilingan": row["qabul_qilingan"],
        "qaror_muddati": dt.date.fromisoformat(row["qaror_muddati"]).strftime("%d.%m.%Y"),
        "holat": row["holat"],
    }


def _read(body: Any) -> dict[str, Any] | str:
    """The application as the agency keeps it, or what is wrong with it."""
    if not isinstance(body, dict) or set(body) != {*_FIELDS, "dalillar"}:
        return "ariza maydonlari: " + ", ".join(sorted({*_FIELDS, "dalillar"}))
    for name, pattern in _FIELDS.items():
        if not isinstance(body[name], str) or not re.fullmatch(pattern, body[name]):
            return f"{name} noto'g'ri"
    evidence = body["dalillar"]
    if not isinstance(evidence, list) or not 0 < len(evidence) <= 10 or \
            not all(isinstance(e, str) and len(e) <= 40 for e in evidence):
        return "dalillar: 1-10 ta hujjat raqami"
    return body


def create_app(
    db_path: Path, *, now: Callable[[], dt.datetime] = lambda: dt.datetime.now(_TASHKENT)
) -> FastAPI:
    """The agency's HTTP API over the database at ``db_path`` (seeded if absent)."""
    path = str(seed(db_path))
    app = FastAPI(title="Social protection agency (demo)")
    app.state.lookups = 0

    def connect() -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=5, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"holat": "ishlayapti"}

    @app.get(ELIGIBILITY_PATH)
    def eligibility(jshshir: str) -> JSONResponse:
        app.state.lookups += 1
        if not re.fullmatch(r"[0-9]{14}", jshshir):
            return problem(400, "Bad Request", "JShShIR 14 ta raqamdan iborat bo'lishi kerak")
        with contextlib.closing(connect()) as db:
            entry = db.execute("SELECT * FROM reestr WHERE jshshir = ?", (jshshir,)).fetchone()
            paid = [r[0] for r in db.execute(
                "SELECT bola FROM tolovlar WHERE ota_ona = ? AND turi = 'tugilish' ORDER BY bola",
                (jshshir,))]
        return JSONResponse({
            "jshshir": jshshir,
            "reestrda": entry is not None,
            "reestr_raqami": entry["raqam"] if entry else None,
            "asos": entry["asos"] if entry else None,
            "tolangan": paid,
        })

    @app.post(APPLICATIONS_PATH)
    async def apply(request: Request) -> JSONResponse:
        app.state.lookups += 1
        try:
            body = _read(json.loads(await request.body()))
        except ValueError:
            body = "JSON emas (not JSON)"
        if isinstance(body, str):
            return problem(400, "Bad Request", body)
        content = json.dumps(body, sort_keys=True)
        received = now()
        with contextlib.closing(connect()) as db:
            db.execute("BEGIN IMMEDIATE")  # one writer: numbers and the check stay consistent
            try:
                row = db.execute("SELECT * FROM arizalar WHERE ariza_id = ?",
                                 (body["ariza_id"],)).fetchone()
                if row is not None:
                    db.execute("ROLLBACK")
                    if row["mazmun"] != content:
                        return problem(409, "Conflict",
                                        "bu ariza_id bilan boshqa ariza qabul qilingan")
                    return JSONResponse(_receipt(row), status_code=200)
                year = received.year
                count = db.execute("SELECT COUNT(*) FROM arizalar WHERE raqam LIKE ?",
                                   (f"IH-{year}-%",)).fetchone()[0]
                number = f"IH-{year}-{count + 1:06d}"
                due = received.date() + dt.timedelta(days=DECISION_DAYS)
                db.execute(
                    "INSERT INTO arizalar VALUES (?, ?, ?, ?, ?, ?, 'qabul_qilindi')",
                    (number, body["ariza_id"], content, body["arizachi"],
                     received.isoformat(timespec="seconds"), due.isoformat()),
                )
                row = db.execute("SELECT * FROM arizalar WHERE raqam = ?", (number,)).fetchone()
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return JSONResponse(_receipt(row), status_code=201)

    return app


def applications_recorded(db_path: Path, application_id: str) -> int:
    """How many applications the agency holds under ``application_id`` (its own books)."""
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        return int(db.execute("SELECT COUNT(*) FROM arizalar WHERE ariza_id = ?",
                              (application_id,)).fetchone()[0])
