"""The soap adapter against the demo civil registry and a misbehaving SOAP agency, on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from adapters import (
    AdapterConfigError,
    AdapterContext,
    Deadline,
    NoData,
    ProviderError,
    ProviderInvalidAnswer,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    answering,
    build_adapter,
)
from adapters.base import Adapter
from demo import civil_registry
from demo.agency_kit import fault, soap_envelope
from demo.civil_registry import NS, OPERATION, WSDL_PATH, wsdl_document
from demo.data import AZIZ, BIRTHS, UNKNOWN_PINFL, expected_birth_certificate
from demo.servers import RunningServer, serve_in_thread
from schemas import BirthCertificate, BirthCertificateRequest

CONTEXT = AdapterContext(
    service="civil-registry/birth-certificate/v1",
    request_model=BirthCertificateRequest,
    response_model=BirthCertificate,
)
_XML = "text/xml; charset=utf-8"


def _wrong_record() -> bytes:
    answer = etree.Element(f"{{{NS}}}{OPERATION}Response", nsmap={None: NS})
    record = etree.SubElement(answer, f"{{{NS}}}Yozuv")
    etree.SubElement(record, f"{{{NS}}}Seriya").text = "I-TN"
    etree.SubElement(record, f"{{{NS}}}Nimadir").text = "not in the WSDL"
    return soap_envelope(answer)


def misbehaving_app() -> Starlette:
    """A SOAP agency whose every path serves the registry's WSDL and misbehaves on POST."""

    async def wsdl(request: Request) -> Response:
        return Response(wsdl_document(str(request.url.replace(query=""))), media_type=_XML)

    async def post(request: Request) -> Response:
        mode = request.path_params["mode"]
        if mode == "slow":
            await asyncio.sleep(1.5)
            return fault("Server", "late")
        if mode == "html-500":
            return PlainTextResponse("<html>Internal Server Error</html>", status_code=500)
        if mode == "empty-503":
            return Response(b"", status_code=503)
        if mode == "html-403":
            return PlainTextResponse("<html>Forbidden</html>", status_code=403)
        if mode == "not-xml":
            return Response(b"<html><body>ok</body>", status_code=200, media_type="text/html")
        if mode == "garbage-xml":
            return Response(b"\x00\x01 definitely not xml", media_type=_XML)
        if mode == "wrong-shape":
            return Response(_wrong_record(), media_type=_XML)
        if mode == "huge":
            return Response(b"<a>" + b"x" * 200_000 + b"</a>", media_type=_XML)
        if mode == "doctype":
            bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>'
                    b"<x>&a;&a;&a;</x>")
            return Response(bomb, media_type=_XML)
        if mode == "server-fault":
            return fault("Server", f"database down while looking up {AZIZ.pinfl}")
        if mode == "client-fault":
            return fault("Client", "bad request")
        if mode == "custom-fault":
            return fault("Client.Busy", "try later")
        if mode == "no-fault-500":
            return Response(soap_envelope(etree.Element("nothing")), status_code=500,
                            media_type=_XML)
        return PlainTextResponse("unknown mode", status_code=404)

    return Starlette(routes=[
        Route("/{mode}", wsdl, methods=["GET"]),
        Route("/{mode}", post, methods=["POST"]),
    ])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    db = tmp_path_factory.mktemp("civil") / "civil.db"
    with serve_in_thread(civil_registry.create_app(db)) as server:
        yield server


@pytest.fixture(scope="module")
def bad_agency() -> Iterator[RunningServer]:
    with serve_in_thread(misbehaving_app(), timeout_graceful_shutdown=1) as server:
        yield server


def make(wsdl: str, **options: Any) -> Adapter:
    return build_adapter(
        "soap",
        {"wsdl": wsdl, "operation": OPERATION, "map": "demo.civil_mapping",
         "faults": {"Client.NotFound": "no-data"}, **options},
        CONTEXT,
    )


@pytest.fixture
def adapter(registry: RunningServer) -> Iterator[Adapter]:
    a = make(f"{registry.url}{WSDL_PATH}?wsdl")
    yield a
    a.close()


def failure(adapter: Adapter, raised: list[ProviderError], seconds: float = 5.0,
            **request: str) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        adapter.call(BirthCertificateRequest(**(request or {"pinfl": AZIZ.pinfl})),
                     Deadline.after(seconds))
    raised.append(info.value)
    return info.value


def bad(server: RunningServer, mode: str, **options: Any) -> Adapter:
    return make(f"{server.url}/{mode}?wsdl", **options)


@pytest.mark.parametrize("birth", BIRTHS, ids=lambda b: b.given_name)
def test_a_birth_maps_to_the_shared_schema_by_pinfl_and_by_number(
    adapter: Adapter, birth: Any
) -> None:
    by_pinfl = adapter.call(BirthCertificateRequest(pinfl=birth.pinfl), Deadline.after(5))
    by_number = adapter.call(BirthCertificateRequest(number=birth.certificate), Deadline.after(5))
    assert isinstance(by_pinfl, BirthCertificate)
    assert by_pinfl == by_number == expected_birth_certificate(birth.pinfl)


def test_names_and_parents_are_translated(adapter: Adapter) -> None:
    sevara = adapter.call(BirthCertificateRequest(pinfl=BIRTHS[3].pinfl), Deadline.after(5))
    assert sevara.child.sex == "female" and sevara.child.full_name == "Toshmatova Sevara Jasurovna"
    assert [(p.role, p.full_name) for p in sevara.parents] == [
        ("father", "Toshmatov Jasur Bahodir o'g'li")
    ]
    aziz = adapter.call(BirthCertificateRequest(pinfl=AZIZ.pinfl), Deadline.after(5))
    assert [p.pinfl for p in aziz.parents] == [None, None]


def test_not_found_fault_is_no_data(adapter: Adapter, raised: list[ProviderError]) -> None:
    for request in ({"pinfl": UNKNOWN_PINFL}, {"number": "I-TN 9999999"}):
        error = failure(adapter, raised, **request)
        assert type(error) is NoData
        assert "SOAP Fault Client.NotFound" in str(error)


def test_without_the_faults_table_a_client_fault_is_rejected(
    registry: RunningServer, raised: list[ProviderError]
) -> None:
    a = make(f"{registry.url}{WSDL_PATH}?wsdl", faults={})
    try:
        assert type(failure(a, raised, pinfl=UNKNOWN_PINFL)) is ProviderRejected
    finally:
        a.close()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("server-fault", ProviderUnavailable), ("client-fault", ProviderRejected),
     ("no-fault-500", ProviderUnavailable), ("html-500", ProviderUnavailable),
     ("empty-503", ProviderUnavailable), ("html-403", ProviderRejected)],
)
def test_faults_and_http_errors_map_to_the_error_tree(
    bad_agency: RunningServer, mode: str, expected: type[ProviderError],
    raised: list[ProviderError]
) -> None:
    a = bad(bad_agency, mode)
    try:
        error = failure(a, raised)
    finally:
        a.close()
    assert type(error) is expected
    assert error.transient is (expected is ProviderUnavailable)


def test_the_faults_option_maps_an_agency_code(
    bad_agency: RunningServer, raised: list[ProviderError]
) -> None:
    a = bad(bad_agency, "custom-fault", faults={"Client.Busy": "provider-unavailable"})
    try:
        assert type(failure(a, raised)) is ProviderUnavailable
    finally:
        a.close()


@pytest.mark.parametrize("mode", ["not-xml", "garbage-xml", "wrong-shape", "huge", "doctype"])
def test_garbage_is_an_invalid_answer(
    bad_agency: RunningServer, mode: str, raised: list[ProviderError]
) -> None:
    a = bad(bad_agency, mode, max_response_bytes=100_000)
    try:
        error = failure(a, raised)
    finally:
        a.close()
    assert type(error) is ProviderInvalidAnswer, error
    assert "soap GetBirthRecord" in str(error)


def test_slow_agency_times_out_within_the_deadline(
    bad_agency: RunningServer, raised: list[ProviderError]
) -> None:
    a = bad(bad_agency, "slow")
    try:
        started = time.monotonic()
        error = failure(a, raised, seconds=0.4)
        elapsed = time.monotonic() - started
    finally:
        a.close()
    assert type(error) is ProviderTimeout and error.transient
    assert elapsed < 1.0


def test_agency_down_is_unavailable_and_the_wsdl_is_loaded_once_it_is_up(
    tmp_path: Path, raised: list[ProviderError]
) -> None:
    with socket.socket() as s:  # a port nobody listens on, yet
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    a = make(f"http://127.0.0.1:{port}{WSDL_PATH}?wsdl")  # a node starts while the agency is down
    try:
        error = failure(a, raised)
        assert type(error) is ProviderUnavailable and "WSDL" in str(error)
        with serve_in_thread(civil_registry.create_app(tmp_path / "c.db"), port=port):
            answer = a.call(BirthCertificateRequest(pinfl=AZIZ.pinfl), Deadline.after(5))
        assert answer == expected_birth_certificate(AZIZ.pinfl)
    finally:
        a.close()


def test_expired_deadline_does_not_call(adapter: Adapter, raised: list[ProviderError]) -> None:
    assert type(failure(adapter, raised, seconds=0)) is ProviderTimeout


def test_unknown_operation_is_a_config_error(registry: RunningServer) -> None:
    a = build_adapter(
        "soap",
        {"wsdl": f"{registry.url}{WSDL_PATH}?wsdl", "operation": "GetDeathRecord",
         "map": "demo.civil_mapping"},
        CONTEXT,
    )
    try:
        with pytest.raises(AdapterConfigError, match="GetDeathRecord"):
            a.call(BirthCertificateRequest(pinfl=AZIZ.pinfl), Deadline.after(5))
    finally:
        a.close()


def test_address_option_overrides_the_wsdl_endpoint(
    registry: RunningServer, bad_agency: RunningServer
) -> None:
    """The WSDL of the misbehaving agency, the calls to the real registry."""
    a = bad(bad_agency, "html-500", address=f"{registry.url}{WSDL_PATH}")
    try:
        answer = a.call(BirthCertificateRequest(pinfl=AZIZ.pinfl), Deadline.after(5))
    finally:
        a.close()
    assert answer == expected_birth_certificate(AZIZ.pinfl)


@pytest.mark.parametrize(
    "options",
    [{"map": "demo.no_such_mapping"}, {"map": "demo.data"}, {"faults": {"X": "access-denied"}},
     {"address": "ftp://x"}, {"timeout": 3}],
)
def test_bad_options_are_refused_at_config_time(options: dict[str, Any]) -> None:
    with pytest.raises(AdapterConfigError):
        make("http://127.0.0.1:9/ws?wsdl", **options)


def test_the_registry_refuses_hostile_xml(registry: RunningServer) -> None:
    import httpx

    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>'
            b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
            b"<soap:Body>&a;</soap:Body></soap:Envelope>")
    r = httpx.post(f"{registry.url}{WSDL_PATH}", content=bomb,
                   headers={"Content-Type": "text/xml"})
    assert r.status_code == 500 and b"soap:Client" in r.content


def test_the_agency_gets_the_bus_message_id_in_a_soap_header(
    registry: RunningServer, adapter: Adapter
) -> None:
    journal = registry.server.config.app.state.message_ids
    with answering("3f1c2a9e-2222-4000-8000-000000000002"):
        adapter.call(BirthCertificateRequest(pinfl=AZIZ.pinfl), Deadline.after(5))
    adapter.call(BirthCertificateRequest(pinfl=AZIZ.pinfl), Deadline.after(5))
    assert journal[-2:] == ["3f1c2a9e-2222-4000-8000-000000000002", None]
