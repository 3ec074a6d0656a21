"""The rest adapter against the demo residence registry and a misbehaving agency, on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

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
from demo.data import (
    AZIZ,
    JASUR,
    MALIKA,
    NOT_IN_RESIDENCE_REGISTRY,
    UNKNOWN_PINFL,
    expected_residence,
)
from demo.residence_registry import create_app
from demo.servers import RunningServer, serve_in_thread
from schemas import ResidenceRegistration, ResidenceRegistrationRequest, SharedRequest

CONTEXT = AdapterContext(
    service="residence-registry/registration/v1",
    request_model=ResidenceRegistrationRequest,
    response_model=ResidenceRegistration,
)
PATH = "/api/v2/citizens/{pinfl}/registration"

# Mapping functions of the POST test (this module is its own ``map``).
SEEN: list[dict[str, Any]] = []


def to_request(request: SharedRequest) -> dict[str, Any]:
    return {"so'rov": {"jshshir": request.subject()}}


def to_response(native: Any, request: SharedRequest) -> dict[str, Any]:
    SEEN.append(native)
    return expected_residence(AZIZ.pinfl).model_dump()  # type: ignore[union-attr]


def native_answer(pinfl: str, **changes: Any) -> dict[str, Any]:
    answer = {
        "jshshir": pinfl, "fio": "KARIMOV AZIZ RUSTAMOVICH",
        "manzil": {"viloyat": "Toshkent shahri", "tuman": "Yunusobod tumani",
                   "kucha": "Amir Temur ko'chasi", "uy": "108", "xonadon": "45"},
        "turi": "doimiy", "qayd_sanasi": "02.04.2015", "amal_muddati": None,
    }
    return answer | changes


def misbehaving_app() -> FastAPI:
    """An agency that is slow, answers garbage, fails, or echoes what it got."""
    app = FastAPI()

    @app.get("/slow/{pinfl}")
    async def slow(pinfl: str) -> dict[str, str]:
        await asyncio.sleep(1.5)
        return {}

    @app.get("/trickle/{pinfl}")
    async def trickle(pinfl: str) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(30):
                yield b" "
                await asyncio.sleep(0.05)
        return StreamingResponse(body(), media_type="application/json")

    @app.get("/text/{pinfl}")
    def text(pinfl: str) -> PlainTextResponse:
        return PlainTextResponse(f"<html>{pinfl} is fine</html>")

    @app.get("/wrong-shape/{pinfl}")
    def wrong_shape(pinfl: str) -> dict[str, Any]:
        return {"status": "ok", "subject": pinfl}

    @app.get("/list/{pinfl}")
    def a_list(pinfl: str) -> list[str]:
        return [pinfl]

    @app.get("/bad-values/{pinfl}")
    def bad_values(pinfl: str) -> dict[str, Any]:
        return native_answer(pinfl, turi="abadiy", qayd_sanasi="31.02.2020")

    @app.get("/too-long/{pinfl}")
    def too_long(pinfl: str) -> dict[str, Any]:
        return native_answer(pinfl, fio="X" * 500)

    @app.get("/other-person/{pinfl}")
    def other_person(pinfl: str) -> dict[str, Any]:
        return native_answer(JASUR.pinfl)

    @app.get("/huge/{pinfl}")
    def huge(pinfl: str) -> Response:
        return Response(b"[" + b"0," * 100_000 + b"0]", media_type="application/json")

    @app.get("/deep/{pinfl}")
    def deep(pinfl: str) -> Response:
        return Response(b"[" * 50_000 + b"]" * 50_000, media_type="application/json")

    @app.get("/status/{code}/{pinfl}")
    def status(code: int, pinfl: str) -> JSONResponse:
        return JSONResponse({"detail": f"no {pinfl}"}, status_code=code)

    @app.post("/echo/{pinfl}")
    async def echo(pinfl: str, request: Request) -> dict[str, Any]:
        return {"path": request.url.path, "body": await request.json(),
                "header": request.headers.get("x-agency-key")}

    return app


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with serve_in_thread(create_app(tmp_path_factory.mktemp("registry") / "registry.db")) as s:
        yield s


@pytest.fixture(scope="module")
def bad_agency() -> Iterator[RunningServer]:
    with serve_in_thread(misbehaving_app()) as server:
        yield server


def make(base_url: str, path: str = PATH, **options: Any) -> Adapter:
    return build_adapter(
        "rest",
        {"base_url": base_url, "path": path, "map": "demo.residence_mapping", **options},
        CONTEXT,
    )


def call(adapter: Adapter, pinfl: str, seconds: float = 5.0) -> Any:
    return adapter.call(ResidenceRegistrationRequest(pinfl=pinfl), Deadline.after(seconds))


def failure(adapter: Adapter, pinfl: str, raised: list[ProviderError], seconds: float = 5.0
            ) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        call(adapter, pinfl, seconds)
    raised.append(info.value)
    return info.value


@pytest.mark.parametrize("who", [AZIZ, JASUR, MALIKA], ids=lambda p: p.given_name)
def test_a_registered_person_maps_to_the_shared_schema(registry: RunningServer, who: Any) -> None:
    adapter = make(registry.url)
    try:
        answer = call(adapter, who.pinfl)
    finally:
        adapter.close()
    assert isinstance(answer, ResidenceRegistration)
    assert answer == expected_residence(who.pinfl)


def test_temporary_registration_and_missing_apartment_are_translated(registry: RunningServer
                                                                    ) -> None:
    adapter = make(registry.url)
    try:
        jasur, malika = call(adapter, JASUR.pinfl), call(adapter, MALIKA.pinfl)
    finally:
        adapter.close()
    assert (jasur.kind, str(jasur.valid_until)) == ("temporary", "2027-06-30")
    assert jasur.full_name == "Toshmatov Jasur Bahodir o'g'li"
    assert malika.address.apartment is None


@pytest.mark.parametrize("pinfl", [NOT_IN_RESIDENCE_REGISTRY, UNKNOWN_PINFL])
def test_unknown_person_is_no_data(registry: RunningServer, pinfl: str,
                                   raised: list[ProviderError]) -> None:
    adapter = make(registry.url)
    try:
        error = failure(adapter, pinfl, raised)
    finally:
        adapter.close()
    assert type(error) is NoData
    assert "GET /api/v2/citizens/{pinfl}/registration" in str(error)


def test_server_down_is_unavailable(raised: list[ProviderError]) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    adapter = make(f"http://127.0.0.1:{port}")
    try:
        error = failure(adapter, AZIZ.pinfl, raised)
    finally:
        adapter.close()
    assert type(error) is ProviderUnavailable and error.transient


@pytest.mark.parametrize("path", ["/slow/{pinfl}", "/trickle/{pinfl}"])
def test_slow_agency_times_out_within_the_deadline(bad_agency: RunningServer, path: str,
                                                   raised: list[ProviderError]) -> None:
    adapter = make(bad_agency.url, path)
    try:
        started = time.monotonic()
        error = failure(adapter, AZIZ.pinfl, raised, seconds=0.3)
        elapsed = time.monotonic() - started
    finally:
        adapter.close()
    assert type(error) is ProviderTimeout
    assert elapsed < 0.8


def test_expired_deadline_does_not_call(bad_agency: RunningServer,
                                        raised: list[ProviderError]) -> None:
    adapter = make(bad_agency.url, "/slow/{pinfl}")
    try:
        error = failure(adapter, AZIZ.pinfl, raised, seconds=0)
    finally:
        adapter.close()
    assert type(error) is ProviderTimeout


@pytest.mark.parametrize(
    "path",
    ["/text/{pinfl}", "/wrong-shape/{pinfl}", "/list/{pinfl}", "/bad-values/{pinfl}",
     "/too-long/{pinfl}", "/other-person/{pinfl}", "/huge/{pinfl}", "/deep/{pinfl}"],
)
def test_garbage_answer_is_invalid(bad_agency: RunningServer, path: str,
                                   raised: list[ProviderError]) -> None:
    adapter = make(bad_agency.url, path, max_response_bytes=100_000)
    try:
        error = failure(adapter, AZIZ.pinfl, raised)
    finally:
        adapter.close()
    assert type(error) is ProviderInvalidAnswer
    assert path in str(error)


@pytest.mark.parametrize(
    ("code", "expected"),
    [(500, ProviderUnavailable), (503, ProviderUnavailable), (429, ProviderUnavailable),
     (400, ProviderRejected), (403, ProviderRejected), (404, NoData), (408, ProviderTimeout),
     (302, ProviderInvalidAnswer)],
)
def test_status_codes_map_to_the_error_tree(bad_agency: RunningServer, code: int,
                                            expected: type[ProviderError],
                                            raised: list[ProviderError]) -> None:
    adapter = make(bad_agency.url, f"/status/{code}/{{pinfl}}")
    try:
        error = failure(adapter, AZIZ.pinfl, raised)
    finally:
        adapter.close()
    assert type(error) is expected


def test_post_sends_the_mapped_body_and_headers(bad_agency: RunningServer) -> None:
    SEEN.clear()
    adapter = build_adapter(
        "rest",
        {"base_url": bad_agency.url, "method": "POST", "path": "/echo/{pinfl}",
         "map": __name__, "headers": {"X-Agency-Key": "k-1"}},
        CONTEXT,
    )
    try:
        answer = call(adapter, AZIZ.pinfl)
    finally:
        adapter.close()
    assert answer == expected_residence(AZIZ.pinfl)
    assert [{"path": f"/echo/{AZIZ.pinfl}", "body": {"so'rov": {"jshshir": AZIZ.pinfl}},
                     "header": "k-1"}] == SEEN


@pytest.mark.parametrize(
    "options",
    [{"path": "/x/{stir}"}, {"map": "demo.no_such_mapping"}, {"map": "demo.data"},
     {"method": "DELETE"}, {"base_url": "ftp://example"}, {"timeout": 3}],
)
def test_bad_options_are_refused_at_config_time(options: dict[str, Any]) -> None:
    with pytest.raises(AdapterConfigError):
        make(**({"base_url": "http://127.0.0.1:9"} | options))


def test_the_agency_gets_the_bus_message_id_in_a_header(registry: RunningServer) -> None:
    journal = registry.server.config.app.state.message_ids
    adapter = make(registry.url)
    try:
        with answering("3f1c2a9e-1111-4000-8000-000000000001"):
            call(adapter, AZIZ.pinfl)
        call(adapter, AZIZ.pinfl)  # outside the bus (a test, a tool): no header
    finally:
        adapter.close()
    assert journal[-2:] == ["3f1c2a9e-1111-4000-8000-000000000001", None]
