"""What the demo's stand-in agencies are built from, so each module holds only its own data,
vocabulary and rules.

* ``create_once(path, fill)``: an agency's database file, made by ``fill(temporary path)`` beside
  ``path`` and renamed into place, so it appears complete or not at all (its folder 0700);
  ``seed_sqlite(path, fill)`` is the same for a plain ``sqlite3`` connection;
  ``seed_sqlalchemy(path, load)`` for the agencies whose loader takes a SQLAlchemy connection
  (and so loads PostgreSQL too).
* ``problem(status, title, detail)``: the RFC 9457 answer of the REST agencies.
* SOAP agencies: ``soap_envelope`` and ``fault`` (SOAP 1.1), ``wsdl(...)`` (a document/literal
  WSDL of one operation around the agency's own XML Schema), and ``soap_app(...)``: the
  Starlette app serving ``GET path?wsdl`` (its ``soap:address`` is the URL it was fetched
  from), ``POST path`` (parsed with the bus's hardened parser, ``signing.xml.parse_xml``) and
  ``GET /health``, counting lookups in ``app.state.lookups`` and journaling the bus's
  ``MessageId`` SOAP header of each in ``app.state.message_ids`` (None when absent): the same id
  coming twice is a request the bus delivered twice.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from lxml import etree
from sqlalchemy import Connection, create_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.soap import BUS_SOAP_NS
from signing import SigningError
from signing.files import private_dir
from signing.xml import SOAP11, parse_xml

__all__ = [
    "XML_MEDIA_TYPE",
    "create_once",
    "fault",
    "operation_in",
    "problem",
    "seed_sqlalchemy",
    "seed_sqlite",
    "soap_app",
    "soap_envelope",
    "subelement",
    "wsdl",
]

XML_MEDIA_TYPE = "text/xml; charset=utf-8"


def create_once(path: Path, fill: Callable[[str], None]) -> Path:
    """Create ``path`` with ``fill(temporary path)`` unless it exists; return ``path``."""
    path = Path(path)
    if path.exists():
        return path
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        fill(tmp)
        os.replace(tmp, path)  # appear complete or not at all
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def seed_sqlite(path: Path, fill: Callable[[sqlite3.Connection], None]) -> Path:
    """``create_once`` a SQLite database filled by ``fill(connection)`` in one transaction."""

    def run(tmp: str) -> None:
        with contextlib.closing(sqlite3.connect(tmp)) as db, db:
            fill(db)

    return create_once(path, run)


def seed_sqlalchemy(path: Path, load: Callable[[Connection], None]) -> Path:
    """``create_once`` a SQLite database loaded by ``load(SQLAlchemy connection)``."""

    def run(tmp: str) -> None:
        engine = create_engine(f"sqlite:///{tmp}")
        try:
            with engine.begin() as conn:
                load(conn)
        finally:
            engine.dispose()

    return create_once(path, run)


def problem(status: int, title: str, detail: str) -> JSONResponse:
    """A REST agency's RFC 9457 problem answer."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def operation_in(root: etree._Element, ns: str, operation: str) -> etree._Element | None:
    """The body's ``operation`` element of a parsed SOAP request, or None (another one)."""
    body = root.find(f"{{{SOAP11}}}Body")
    first = body[0] if body is not None and len(body) else None
    return first if first is not None and first.tag == f"{{{ns}}}{operation}" else None


def subelement(parent: etree._Element, ns: str, name: str, text: str | None = None
               ) -> etree._Element:
    """``<name>`` in namespace ``ns`` under ``parent``, with ``text`` if given."""
    element = etree.SubElement(parent, f"{{{ns}}}{name}")
    if text is not None:
        element.text = text
    return element


def soap_envelope(body_child: etree._Element) -> bytes:
    envelope = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"soap": SOAP11})
    etree.SubElement(envelope, f"{{{SOAP11}}}Body").append(body_child)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))


def fault(code: str, text: str, status: int = 500) -> Response:
    """A SOAP 1.1 Fault; ``code`` like ``Client`` or ``Client.NotFound`` (soap: prefixed)."""
    element = etree.Element(f"{{{SOAP11}}}Fault", nsmap={"soap": SOAP11})
    etree.SubElement(element, "faultcode").text = f"soap:{code}"
    etree.SubElement(element, "faultstring").text = text
    return Response(soap_envelope(element), status_code=status, media_type=XML_MEDIA_TYPE)


_WSDL = """<?xml version="1.0" encoding="utf-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:t="{ns}" targetNamespace="{ns}" name="{name}Xizmati">
  <wsdl:types>
    <xsd:schema targetNamespace="{ns}" elementFormDefault="qualified">
{types}
    </xsd:schema>
  </wsdl:types>
  <wsdl:message name="{op}Input"><wsdl:part name="parameters" element="t:{op}"/></wsdl:message>
  <wsdl:message name="{op}Output">
    <wsdl:part name="parameters" element="t:{op}Response"/>
  </wsdl:message>
  <wsdl:portType name="{name}PortType">
    <wsdl:operation name="{op}">
      <wsdl:input message="t:{op}Input"/>
      <wsdl:output message="t:{op}Output"/>
    </wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="{name}Binding" type="t:{name}PortType">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="{op}">
      <soap:operation soapAction="{ns}#{op}"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="{name}Xizmati">
    <wsdl:port name="{name}Port" binding="t:{name}Binding">
      <soap:address location="{address}"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""


_WRAPPER = """      <xsd:element name="{element}">
        <xsd:complexType>
          <xsd:sequence>
{fields}
          </xsd:sequence>
        </xsd:complexType>
      </xsd:element>"""


def wsdl(
    *, ns: str, operation: str, name: str, types: str, request: str, response: str,
    address: str,
) -> bytes:
    """The WSDL of a service ``<name>Xizmati`` with one document/literal ``operation``, served
    at ``address``. Its XML Schema, in namespace ``ns`` (prefix ``t``), is ``types`` (the
    agency's complex types) and the elements ``<operation>`` and ``<operation>Response``, whose
    sequences are ``request`` and ``response`` (``xsd:element`` lines)."""
    schema = "\n".join([
        types.strip("\n"),
        _WRAPPER.format(element=operation, fields=request.strip("\n")),
        _WRAPPER.format(element=f"{operation}Response", fields=response.strip("\n")),
    ])
    return _WSDL.format(ns=ns, op=operation, name=name, types=schema, address=address).encode()


def soap_app(
    path: str,
    wsdl_at: Callable[[str], bytes],
    answer: Callable[[etree._Element], Response],
) -> Starlette:
    """A SOAP agency's app: ``wsdl_at(address)`` for ``GET path?wsdl``, ``answer(parsed
    request)`` for ``POST path`` (an unreadable one is a ``soap:Client`` fault)."""

    async def wsdl_or_nothing(request: Request) -> Response:
        if "wsdl" not in {k.lower() for k in request.query_params}:
            return Response("add ?wsdl", status_code=404, media_type="text/plain")
        return Response(wsdl_at(str(request.url.replace(query=""))), media_type=XML_MEDIA_TYPE)

    async def endpoint(request: Request) -> Response:
        request.app.state.lookups += 1
        try:
            root = parse_xml(await request.body())
        except SigningError:
            request.app.state.message_ids.append(None)
            return fault("Client", "So'rov o'qib bo'lmadi (unreadable request)")
        request.app.state.message_ids.append(
            root.findtext(f"{{{SOAP11}}}Header/{{{BUS_SOAP_NS}}}MessageId")
        )
        return answer(root)

    async def health(request: Request) -> Response:
        return JSONResponse({"holat": "ishlayapti"})

    app = Starlette(
        routes=[
            Route(path, wsdl_or_nothing, methods=["GET"]),
            Route(path, endpoint, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
    app.state.lookups = 0  # the agency's own count of lookups served
    app.state.message_ids = []  # its journal: the bus MessageId SOAP header of each lookup
    return app
