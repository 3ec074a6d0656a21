"""Demo agency "civil-registry": birth records of the civil registry offices (FHDYO), over SOAP.

A SOAP 1.1 document/literal service with its own SQLite database (``seed`` creates it from
``demo.data.BIRTHS``), answering in its own native vocabulary, deliberately not the shared
schema::

    GET  /ws/birth?wsdl     the WSDL (its soap:address is the URL it was fetched from)
    POST /ws/birth          SOAPAction "urn:fhdyo:tugilish:v1#GetBirthRecord"

    <GetBirthRecord xmlns="urn:fhdyo:tugilish:v1">       one of the two:
      <JShShIR>61203186540019</JShShIR>                  the child's PINFL
      <Guvohnoma><Seriya>I-TN</Seriya><Raqam>0451207</Raqam></Guvohnoma>
    </GetBirthRecord>

    <GetBirthRecordResponse xmlns="urn:fhdyo:tugilish:v1"><Yozuv>
      <Seriya>I-TN</Seriya><Raqam>0451207</Raqam>
      <Bola><JShShIR>…</JShShIR><Familiya>KARIMOVA</Familiya><Ism>MADINA</Ism>
            <OtasiningIsmi>AZIZOVNA</OtasiningIsmi><TugilganSana>2018-03-12</TugilganSana>
            <Jinsi>A</Jinsi><TugilganJoyi>Toshkent shahri</TugilganJoyi></Bola>
      <Ota><JShShIR>…</JShShIR><FIO>KARIMOV AZIZ RUSTAMOVICH</FIO></Ota>
      <Ona><FIO>…</FIO></Ona>
      <QaydSanasi>2018-03-20</QaydSanasi><FHDYOBolimi>…</FHDYOBolimi>
    </Yozuv></GetBirthRecordResponse>

``Jinsi`` is E (erkak, male) or A (ayol, female); ``Ota`` and ``Ona`` (father, mother) are each
optional, and so is their ``JShShIR``.

Faults: ``soap:Client.NotFound`` (no such record), ``soap:Client`` (a request it cannot read:
not XML, a DOCTYPE, neither or both keys, another operation). Requests are parsed with the
bus's hardened parser (``signing.xml.parse_xml``). ``GET /health`` answers ``{"holat": …}``.

The registry's journal (``app.state.message_ids``) keeps the bus's ``MessageId`` SOAP header
(``urn:bus:soap:v1``) of every lookup (None when absent): the same id coming again is a request
the bus delivered twice.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
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
from demo.data import BIRTHS

__all__ = [
    "NS",
    "OPERATION",
    "WSDL_PATH",
    "create_app",
    "seed",
    "wsdl_document",
]

NS = "urn:fhdyo:tugilish:v1"
OPERATION = "GetBirthRecord"
WSDL_PATH = "/ws/birth"
_SCHEMA = """
CREATE TABLE tugilish (
    seriya TEXT NOT NULL, raqam TEXT NOT NULL,
    bola_jshshir TEXT NOT NULL UNIQUE,
    familiya TEXT NOT NULL, ism TEXT NOT NULL, otasining_ismi TEXT NOT NULL,
    tugilgan_sana TEXT NOT NULL, jinsi TEXT NOT NULL CHECK (jinsi IN ('E', 'A')),
    tugilgan_joyi TEXT NOT NULL,
    ota_jshshir TEXT, ota_fio TEXT, ona_jshshir TEXT, ona_fio TEXT,
    qayd_sanasi TEXT NOT NULL, bolim TEXT NOT NULL,
    PRIMARY KEY (seriya, raqam)
)
"""

_TYPES = """
      <xsd:complexType name="Guvohnoma">
        <xsd:sequence>
          <xsd:element name="Seriya" type="xsd:string"/>
          <xsd:element name="Raqam" type="xsd:string"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:complexType name="Shaxs">
        <xsd:sequence>
          <xsd:element name="JShShIR" type="xsd:string" minOccurs="0"/>
          <xsd:element name="FIO" type="xsd:string"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:complexType name="Bola">
        <xsd:sequence>
          <xsd:element name="JShShIR" type="xsd:string"/>
          <xsd:element name="Familiya" type="xsd:string"/>
          <xsd:element name="Ism" type="xsd:string"/>
          <xsd:element name="OtasiningIsmi" type="xsd:string"/>
          <xsd:element name="TugilganSana" type="xsd:date"/>
          <xsd:element name="Jinsi" type="xsd:string"/>
          <xsd:element name="TugilganJoyi" type="xsd:string"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:complexType name="Yozuv">
        <xsd:sequence>
          <xsd:element name="Seriya" type="xsd:string"/>
          <xsd:element name="Raqam" type="xsd:string"/>
          <xsd:element name="Bola" type="t:Bola"/>
          <xsd:element name="Ota" type="t:Shaxs" minOccurs="0"/>
          <xsd:element name="Ona" type="t:Shaxs" minOccurs="0"/>
          <xsd:element name="QaydSanasi" type="xsd:date"/>
          <xsd:element name="FHDYOBolimi" type="xsd:string"/>
        </xsd:sequence>
      </xsd:complexType>
"""
_REQUEST = """
            <xsd:element name="JShShIR" type="xsd:string" minOccurs="0"/>
            <xsd:element name="Guvohnoma" type="t:Guvohnoma" minOccurs="0"/>
"""
_RESPONSE = """
            <xsd:element name="Yozuv" type="t:Yozuv"/>
"""


def wsdl_document(address: str) -> bytes:
    """The registry's WSDL, with ``address`` as the endpoint (its soap:address)."""
    return wsdl(ns=NS, operation=OPERATION, name="Tugilish", types=_TYPES,
                request=_REQUEST, response=_RESPONSE, address=address)


def seed(db_path: Path) -> Path:
    """Create the registry's database at ``db_path`` from ``demo.data.BIRTHS`` unless it exists."""

    def fill(db: sqlite3.Connection) -> None:
        db.execute(_SCHEMA)
        rows = []
        for b in BIRTHS:
            parent = {p.role: p for p in b.parents}
            father, mother = parent.get("father"), parent.get("mother")
            rows.append((
                b.series, b.number, b.pinfl, b.surname.upper(), b.given_name.upper(),
                b.patronymic.upper(), b.born_on.isoformat(),
                "E" if b.sex == "male" else "A", b.place_of_birth,
                father.pinfl if father else None,
                father.full_name.upper() if father else None,
                mother.pinfl if mother else None,
                mother.full_name.upper() if mother else None,
                b.registered_on.isoformat(), b.office,
            ))
        db.executemany(
            "INSERT INTO tugilish VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )

    return seed_sqlite(db_path, fill)


def _t(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    return subelement(parent, NS, name, text)


def _record(row: sqlite3.Row) -> etree._Element:
    answer = etree.Element(f"{{{NS}}}{OPERATION}Response", nsmap={None: NS})
    record = _t(answer, "Yozuv")
    _t(record, "Seriya", row["seriya"])
    _t(record, "Raqam", row["raqam"])
    child = _t(record, "Bola")
    for name, column in (("JShShIR", "bola_jshshir"), ("Familiya", "familiya"), ("Ism", "ism"),
                         ("OtasiningIsmi", "otasining_ismi"), ("TugilganSana", "tugilgan_sana"),
                         ("Jinsi", "jinsi"), ("TugilganJoyi", "tugilgan_joyi")):
        _t(child, name, row[column])
    for name, prefix in (("Ota", "ota"), ("Ona", "ona")):
        if row[f"{prefix}_fio"] is not None:
            who = _t(record, name)
            if row[f"{prefix}_jshshir"] is not None:
                _t(who, "JShShIR", row[f"{prefix}_jshshir"])
            _t(who, "FIO", row[f"{prefix}_fio"])
    _t(record, "QaydSanasi", row["qayd_sanasi"])
    _t(record, "FHDYOBolimi", row["bolim"])
    return answer


def _lookup(db_uri: str, root: etree._Element) -> Response:
    operation = operation_in(root, NS, OPERATION)
    if operation is None:
        return fault("Client", "Noma'lum amal (unknown operation)")
    pinfl = operation.findtext(f"{{{NS}}}JShShIR")
    series = operation.findtext(f"{{{NS}}}Guvohnoma/{{{NS}}}Seriya")
    number = operation.findtext(f"{{{NS}}}Guvohnoma/{{{NS}}}Raqam")
    with contextlib.closing(sqlite3.connect(db_uri, uri=True)) as db:
        db.row_factory = sqlite3.Row
        if pinfl is not None and series is None and number is None:
            if not re.fullmatch(r"[0-9]{14}", pinfl):
                return fault("Client", "JShShIR 14 ta raqamdan iborat bo'lishi kerak")
            row = db.execute("SELECT * FROM tugilish WHERE bola_jshshir = ?", (pinfl,)).fetchone()
        elif pinfl is None and series is not None and number is not None:
            row = db.execute(
                "SELECT * FROM tugilish WHERE seriya = ? AND raqam = ?", (series, number)
            ).fetchone()
        else:
            return fault("Client", "JShShIR yoki guvohnoma raqami kerak (bittasi)")
    if row is None:
        return fault("Client.NotFound", "Yozuv topilmadi")
    return Response(soap_envelope(_record(row)), media_type=XML_MEDIA_TYPE)


def create_app(db_path: Path) -> Starlette:
    """The registry's SOAP endpoint over the database at ``db_path`` (seeded if absent)."""
    db_uri = seed(db_path).absolute().as_uri() + "?mode=ro"
    return soap_app(WSDL_PATH, wsdl_document, lambda root: _lookup(db_uri, root))
