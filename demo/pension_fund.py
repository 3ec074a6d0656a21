"""Demo agency "pension-fund": employment periods and salary contributions, over SOAP.

A SOAP 1.1 document/literal service with its own SQLite database (``seed`` creates it from
``demo.records.JOBS``), answering the archive certificate of salary amounts and length of
service in its own vocabulary, not the shared schema::

    GET  /ws/ish-haqi?wsdl     the WSDL (its soap:address is the URL it was fetched from)
    POST /ws/ish-haqi          SOAPAction "urn:pfr:ish-haqi:v1#GetIshHaqiMalumotnoma"

    <GetIshHaqiMalumotnoma xmlns="urn:pfr:ish-haqi:v1">
      <JShShIR>31505862740013</JShShIR>
      <BoshYil>2021</BoshYil><OxirgiYil>2025</OxirgiYil>     (optional: the years of amounts)
    </GetIshHaqiMalumotnoma>

    <GetIshHaqiMalumotnomaResponse xmlns="urn:pfr:ish-haqi:v1"><Malumotnoma>
      <JShShIR>…</JShShIR><FIO>KARIMOV AZIZ RUSTAMOVICH</FIO>
      <Davr><STIR>303456781</STIR><Tashkilot>…</Tashkilot><Lavozim>muhandis</Lavozim>
            <Boshlangan>2008-09-01</Boshlangan><Tugagan>2016-12-31</Tugagan>
            <Oy><Sana>2016-01</Sana><Summa>1694000.00</Summa></Oy> …</Davr> …
      <Staj><Yil>17</Yil><Oy>1</Oy><Kun>3</Kun></Staj><Sana>2026-12-04</Sana>
    </Malumotnoma></GetIshHaqiMalumotnomaResponse>

``Tugagan`` is absent for a current job; ``Staj`` (length of service) is counted up to today
(``today``, injectable) from every period, whichever years were asked.

Faults: ``soap:Client.NotFound`` (nobody insured under that JShShIR), ``soap:Client`` (a request
it cannot read: not XML, a DOCTYPE, a malformed JShShIR or year, another operation). Requests
are parsed with the bus's hardened parser (``signing.xml.parse_xml``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

from lxml import etree
from starlette.applications import Starlette
from starlette.responses import Response

from demo.agency_kit import (
    XML_MEDIA_TYPE,
    fault,
    operation_in,
    seed_sqlite,
    soap_app,
    soap_envelope,
    subelement,
    wsdl,
)
from demo.data import PEOPLE
from demo.records import JOBS, monthly_salaries

__all__ = ["NS", "OPERATION", "WSDL_PATH", "create_app", "seed", "service_length"]

NS = "urn:pfr:ish-haqi:v1"
OPERATION = "GetIshHaqiMalumotnoma"
WSDL_PATH = "/ws/ish-haqi"
_SCHEMA = """
CREATE TABLE sugurtalangan (jshshir TEXT PRIMARY KEY, fio TEXT NOT NULL);
CREATE TABLE ish_davri (
    id INTEGER PRIMARY KEY, jshshir TEXT NOT NULL REFERENCES sugurtalangan (jshshir),
    stir TEXT NOT NULL, tashkilot TEXT NOT NULL, lavozim TEXT NOT NULL,
    boshlangan TEXT NOT NULL, tugagan TEXT
);
CREATE TABLE badal (
    davr_id INTEGER NOT NULL REFERENCES ish_davri (id), oy TEXT NOT NULL,
    summa_tiyin INTEGER NOT NULL, PRIMARY KEY (davr_id, oy)
);
"""

_TYPES = """
      <xsd:complexType name="Oy">
        <xsd:sequence>
          <xsd:element name="Sana" type="xsd:string"/>
          <xsd:element name="Summa" type="xsd:decimal"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:complexType name="Davr">
        <xsd:sequence>
          <xsd:element name="STIR" type="xsd:string"/>
          <xsd:element name="Tashkilot" type="xsd:string"/>
          <xsd:element name="Lavozim" type="xsd:string"/>
          <xsd:element name="Boshlangan" type="xsd:date"/>
          <xsd:element name="Tugagan" type="xsd:date" minOccurs="0"/>
          <xsd:element name="Oy" type="t:Oy" minOccurs="0" maxOccurs="unbounded"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:complexType name="Staj">
        <xsd:sequence>
          <xsd:element name="Yil" type="xsd:int"/>
          <xsd:element name="Oy" type="xsd:int"/>
          <xsd:element name="Kun" type="xsd:int"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:complexType name="Malumotnoma">
        <xsd:sequence>
          <xsd:element name="JShShIR" type="xsd:string"/>
          <xsd:element name="FIO" type="xsd:string"/>
          <xsd:element name="Davr" type="t:Davr" maxOccurs="unbounded"/>
          <xsd:element name="Staj" type="t:Staj"/>
          <xsd:element name="Sana" type="xsd:date"/>
        </xsd:sequence>
      </xsd:complexType>
"""
_REQUEST = """
            <xsd:element name="JShShIR" type="xsd:string"/>
            <xsd:element name="BoshYil" type="xsd:int" minOccurs="0"/>
            <xsd:element name="OxirgiYil" type="xsd:int" minOccurs="0"/>
"""
_RESPONSE = """
            <xsd:element name="Malumotnoma" type="t:Malumotnoma"/>
"""


def seed(db_path: Path) -> Path:
    """Create the fund's database at ``db_path`` from ``demo.records.JOBS`` unless it exists."""
    names = {p.pinfl: p.full_name.upper() for p in PEOPLE}

    def fill(db: sqlite3.Connection) -> None:
        db.executescript(_SCHEMA)
        for pinfl in sorted({j.pinfl for j in JOBS}):
            db.execute("INSERT INTO sugurtalangan VALUES (?, ?)", (pinfl, names[pinfl]))
        for i, job in enumerate(JOBS, 1):
            db.execute(
                "INSERT INTO ish_davri VALUES (?, ?, ?, ?, ?, ?, ?)",
                (i, job.pinfl, job.employer_stir, job.employer_name, job.position,
                 job.started_on.isoformat(),
                 job.ended_on.isoformat() if job.ended_on else None),
            )
            db.executemany(
                "INSERT INTO badal VALUES (?, ?, ?)",
                [(i, month, int(amount * 100)) for month, amount in monthly_salaries(job)],
            )

    return seed_sqlite(db_path, fill)


def service_length(periods: list[tuple[dt.date, dt.date]]) -> tuple[int, int, int]:
    """(years, months, days) of the periods (each from its first to its last day, inclusive),
    added up the way the fund counts: 30 days make a month, 12 months a year."""
    years = months = days = 0
    for start, end in periods:
        end = end + dt.timedelta(days=1)
        y, m, d = end.year - start.year, end.month - start.month, end.day - start.day
        if d < 0:
            m -= 1
            previous = end.replace(day=1) - dt.timedelta(days=1)
            d += previous.day
        if m < 0:
            y, m = y - 1, m + 12
        years, months, days = years + y, months + m, days + d
    months += days // 30
    return years + months // 12, months % 12, days % 30


def _t(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    return subelement(parent, NS, name, text)


def _year(operation: etree._Element, name: str) -> int | None:
    text = operation.findtext(f"{{{NS}}}{name}")
    if text is None:
        return None
    if not re.fullmatch(r"[0-9]{4}", text.strip()):
        raise ValueError(f"{name} to'rt xonali yil bo'lishi kerak")
    return int(text)


def _certificate(db_uri: str, root: etree._Element, today: dt.date) -> Response:
    operation = operation_in(root, NS, OPERATION)
    if operation is None:
        return fault("Client", "Noma'lum amal (unknown operation)")
    pinfl = (operation.findtext(f"{{{NS}}}JShShIR") or "").strip()
    if not re.fullmatch(r"[0-9]{14}", pinfl):
        return fault("Client", "JShShIR 14 ta raqamdan iborat bo'lishi kerak")
    try:
        first, last = _year(operation, "BoshYil"), _year(operation, "OxirgiYil")
    except ValueError as exc:
        return fault("Client", str(exc))
    with contextlib.closing(sqlite3.connect(db_uri, uri=True)) as db:
        db.row_factory = sqlite3.Row
        person = db.execute("SELECT * FROM sugurtalangan WHERE jshshir = ?", (pinfl,)).fetchone()
        if person is None:
            return fault("Client.NotFound", "Sug'urtalangan shaxs topilmadi")
        periods = db.execute(
            "SELECT * FROM ish_davri WHERE jshshir = ? ORDER BY boshlangan", (pinfl,)
        ).fetchall()
        answer = etree.Element(f"{{{NS}}}{OPERATION}Response", nsmap={None: NS})
        record = _t(answer, "Malumotnoma")
        _t(record, "JShShIR", pinfl)
        _t(record, "FIO", person["fio"])
        spans = []
        for period in periods:
            davr = _t(record, "Davr")
            _t(davr, "STIR", period["stir"])
            _t(davr, "Tashkilot", period["tashkilot"])
            _t(davr, "Lavozim", period["lavozim"])
            _t(davr, "Boshlangan", period["boshlangan"])
            if period["tugagan"] is not None:
                _t(davr, "Tugagan", period["tugagan"])
            ended = dt.date.fromisoformat(period["tugagan"]) if period["tugagan"] else today
            spans.append((dt.date.fromisoformat(period["boshlangan"]), min(ended, today)))
            months = db.execute(
                "SELECT oy, summa_tiyin FROM badal WHERE davr_id = ? AND oy >= ? AND oy <= ? "
                "ORDER BY oy",
                (period["id"], f"{first or 0:04d}-01", f"{last or 9999:04d}-12"),
            ).fetchall()
            for month in months:
                oy = _t(davr, "Oy")
                _t(oy, "Sana", month["oy"])
                _t(oy, "Summa", f"{month['summa_tiyin'] // 100}.{month['summa_tiyin'] % 100:02d}")
    years, months_, days = service_length(spans)
    staj = _t(record, "Staj")
    _t(staj, "Yil", str(years))
    _t(staj, "Oy", str(months_))
    _t(staj, "Kun", str(days))
    _t(record, "Sana", today.isoformat())
    return Response(soap_envelope(answer), media_type=XML_MEDIA_TYPE)


def create_app(db_path: Path, *, today: Callable[[], dt.date] = dt.date.today) -> Starlette:
    """The fund's SOAP endpoint over the database at ``db_path`` (seeded if absent)."""
    db_uri = seed(db_path).absolute().as_uri() + "?mode=ro"
    return soap_app(WSDL_PATH, wsdl_document, lambda root: _certificate(db_uri, root, today()))


def wsdl_document(address: str) -> bytes:
    """The fund's WSDL, with ``address`` as the endpoint (its soap:address)."""
    return wsdl(ns=NS, operation=OPERATION, name="IshHaqi", types=_TYPES,
                request=_REQUEST, response=_RESPONSE, address=address)
