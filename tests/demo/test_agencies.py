"""The demo agencies answer in their own native formats, from their own databases."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo.cadastre import QUERY, create_database
from demo.data import (
    AZIZ,
    JASUR,
    MALIKA,
    NO_PROPERTY,
    NOT_IN_RESIDENCE_REGISTRY,
    PEOPLE,
    UNKNOWN_PINFL,
)
from demo.records import HOUSEHOLD
from demo.residence_registry import create_app, seed
from demo.servers import RunningServer, serve_in_thread
from schemas.identifiers import validate_pinfl


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with serve_in_thread(create_app(tmp_path_factory.mktemp("registry") / "registry.db")) as s:
        yield s


@pytest.fixture
def client(registry: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry.url, timeout=5) as c:
        yield c


def test_every_demo_pinfl_is_well_formed_and_distinct() -> None:
    pinfls = [p.pinfl for p in PEOPLE] + [UNKNOWN_PINFL]
    assert all(validate_pinfl(p) == p for p in pinfls)
    assert len(set(pinfls)) == len(pinfls)


def test_registry_serves_native_json_for_a_known_person(client: httpx.Client) -> None:
    response = client.get(f"/api/v2/citizens/{AZIZ.pinfl}/registration")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "jshshir": AZIZ.pinfl,
        "fio": "KARIMOV AZIZ RUSTAMOVICH",
        "manzil": {"viloyat": "Toshkent shahri", "tuman": "Yunusobod tumani",
                   "kucha": "Amir Temur ko'chasi", "uy": "108", "xonadon": "45"},
        "turi": "doimiy",
        "qayd_sanasi": "02.04.2015",
        "amal_muddati": None,
    }


def test_registry_native_temporary_registration(client: httpx.Client) -> None:
    native = client.get(f"/api/v2/citizens/{JASUR.pinfl}/registration").json()
    assert (native["turi"], native["amal_muddati"]) == ("vaqtincha", "30.06.2027")
    no_flat = client.get(f"/api/v2/citizens/{MALIKA.pinfl}/registration").json()
    assert no_flat["manzil"]["xonadon"] == ""


@pytest.mark.parametrize("pinfl", [NOT_IN_RESIDENCE_REGISTRY, UNKNOWN_PINFL])
def test_registry_answers_404_problem_for_an_unknown_person(client: httpx.Client, pinfl: str
                                                            ) -> None:
    response = client.get(f"/api/v2/citizens/{pinfl}/registration")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
    assert pinfl not in response.text


def test_registry_answers_400_for_a_malformed_number(client: httpx.Client) -> None:
    response = client.get("/api/v2/citizens/12345/registration")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_seed_keeps_an_existing_database(tmp_path: Path) -> None:
    path = seed(tmp_path / "registry.db")
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM propiska WHERE jshshir = ?", (AZIZ.pinfl,))
    db.close()
    seed(path)
    with sqlite3.connect(path) as db:
        count = db.execute("SELECT count(*) FROM propiska").fetchone()[0]
    db.close()
    assert count == sum(p.residence is not None for p in (*PEOPLE, *HOUSEHOLD)) - 1
    assert [f.name for f in tmp_path.iterdir()] == ["registry.db"]  # no temporary files left


def test_cadastre_database_holds_current_and_past_rights(tmp_path: Path) -> None:
    path = create_database(tmp_path / "cadastre.db")
    with sqlite3.connect(path) as db:
        ended = db.execute(
            "SELECT count(*) FROM rights r JOIN owners w ON w.id = r.owner_id "
            "WHERE w.pinfl = ? AND r.ended IS NOT NULL", (NO_PROPERTY,)).fetchone()[0]
        current = db.execute(QUERY.replace(":pinfl", "?"), (NO_PROPERTY,)).fetchall()
        shared = db.execute("SELECT count(*) FROM rights WHERE object_id = 1").fetchone()[0]
    db.close()
    assert (ended, current, shared) == (1, [], 2)


def test_serve_in_thread_on_port_zero_reports_the_bound_port(tmp_path: Path) -> None:
    server = serve_in_thread(create_app(tmp_path / "registry.db"))
    try:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
        assert httpx.get(server.url + "/health", timeout=5).json() == {"holat": "ishlayapti"}
    finally:
        server.stop()
    assert not server.running
    server.stop()  # twice is fine
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/health", timeout=5)


def test_serve_in_thread_raises_when_the_app_cannot_start() -> None:
    async def broken_app(scope: dict[str, Any], receive: object, send: object) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("cannot start")

    with pytest.raises(RuntimeError, match="did not start"):
        serve_in_thread(broken_app, lifespan="on")
