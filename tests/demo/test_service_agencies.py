"""The demo agencies of the citizens' services answer in their own formats, from their own data."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import zeep
import zeep.exceptions
from zeep.helpers import serialize_object

from demo import (
    education_register,
    enforcement_bureau,
    pension_fund,
    residence_registry,
    social_protection,
)
from demo.data import AZIZ, BOBUR, DILNOZA, JASUR, MALIKA, UNKNOWN_PINFL
from demo.records import (
    BENEFIT_CHILD,
    BOGISHAMOL,
    CASES,
    JOBS,
    STUDIES,
    UNKNOWN_STIR,
    monthly_salaries,
)
from demo.servers import serve_in_thread
from schemas.identifiers import validate_pinfl, validate_stir

TODAY = dt.date(2026, 12, 4)
NOW = dt.datetime(2026, 12, 4, 10, 15, tzinfo=dt.timezone(dt.timedelta(hours=5)))


def test_every_identifier_of_the_new_records_is_well_formed() -> None:
    stirs = {j.employer_stir for j in JOBS} | {s.institution_stir for s in STUDIES} | {
        c.creditor_stir for c in CASES if c.creditor_stir} | {BOGISHAMOL, UNKNOWN_STIR}
    assert all(validate_stir(s) == s for s in stirs)
    pinfls = {j.pinfl for j in JOBS} | {s.pinfl for s in STUDIES} | {
        c.debtor_pinfl for c in CASES if c.debtor_pinfl} | {BENEFIT_CHILD.pinfl}
    assert all(validate_pinfl(p) == p for p in pinfls)


def test_pension_fund_counts_service_and_lists_amounts_over_soap(tmp_path: Path) -> None:
    app = pension_fund.create_app(tmp_path / "pension.db", today=lambda: TODAY)
    with serve_in_thread(app) as fund:
        client = zeep.Client(f"{fund.url}{pension_fund.WSDL_PATH}?wsdl")
        native = serialize_object(client.service.GetIshHaqiMalumotnoma(
            JShShIR=MALIKA.pinfl, BoshYil=2010, OxirgiYil=2010), dict)
        assert native["FIO"] == "RAHIMOVA MALIKA SHAVKATOVNA"
        # 1996-08-15..2010-03-31 is 13y 7m 17d; 2010-05-01..2026-12-04 is 16y 7m 4d
        assert native["Staj"] == {"Yil": 30, "Oy": 2, "Kun": 21}
        assert native["Sana"] == TODAY
        mill, hospital = native["Davr"]
        assert [m["Sana"] for m in mill["Oy"]] == ["2010-01", "2010-02", "2010-03"]
        assert [m["Sana"] for m in hospital["Oy"]] == [f"2010-{m:02d}" for m in range(5, 13)]
        assert hospital["Tugagan"] is None and mill["Tugagan"] == dt.date(2010, 3, 31)
        assert hospital["Oy"][0]["Summa"] == monthly_salaries(JOBS[4])[0][1]
        with pytest.raises(zeep.exceptions.Fault) as missing:
            client.service.GetIshHaqiMalumotnoma(JShShIR=BOBUR.pinfl)
        assert missing.value.code == "soap:Client.NotFound"
        with pytest.raises(zeep.exceptions.Fault) as malformed:
            client.service.GetIshHaqiMalumotnoma(JShShIR="123")
        assert malformed.value.code == "soap:Client"
        hostile = httpx.post(f"{fund.url}{pension_fund.WSDL_PATH}",
                             content=b'<!DOCTYPE x [<!ENTITY e "x">]><x>&e;</x>')
        assert hostile.status_code == 500 and b"soap:Client" in hostile.content
        assert httpx.get(f"{fund.url}{pension_fund.WSDL_PATH}").status_code == 404


def test_education_register_is_a_bare_database_in_its_own_vocabulary(tmp_path: Path) -> None:
    path = education_register.create_database(tmp_path / "education.db")
    with sqlite3.connect(path) as db:
        rows = db.execute(education_register.QUERY.replace(":pinfl", "?"),
                          (DILNOZA.pinfl,)).fetchall()
        assert [(r[3], r[6], r[10]) for r in rows] == [("OTM", "sirtqi", "bitirgan"),
                                                      ("OMTM", "kunduzgi", "bitirgan")]
        db.execute("DELETE FROM tahsil")
    db.close()
    education_register.create_database(path)  # kept as it is
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM tahsil").fetchone()[0] == 0
    db.close()
    assert [f.name for f in tmp_path.iterdir()] == ["education.db"]


@pytest.fixture(scope="module")
def bureau(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    path = tmp_path_factory.mktemp("bureau") / "enforcement.db"
    with serve_in_thread(enforcement_bureau.create_app(path, now=lambda: NOW)) as server, \
            httpx.Client(base_url=server.url) as client:
        yield client


def test_enforcement_bureau_lists_open_cases_of_a_person_or_a_company(
    bureau: httpx.Client,
) -> None:
    person = bureau.get(enforcement_bureau.DEBTS_PATH, params={"jshshir": BOBUR.pinfl}).json()
    assert person["qarzdor"] == {"turi": "jismoniy", "jshshir": BOBUR.pinfl}
    assert [c["ish_raqami"] for c in person["ishlar"]] == ["25/14/002207", "26/14/000311"]
    assert person["ishlar"][1] == {
        "ish_raqami": "26/14/000311", "qozgatilgan": "10.02.2026", "hujjat": "soliq_qarori",
        "hujjat_bergan": "Chust tumani davlat soliq inspeksiyasi",
        "undiruvchi": {"nomi": "Chust tumani davlat soliq inspeksiyasi", "stir": "201777888"},
        "summa": "4850000.00", "undirilgan": "1750000.00", "cheklovlar": ["chet_elga_chiqish"]}
    assert person["jami_qoldiq"] == "21500000.00" and person["sana"] == NOW.isoformat()
    company = bureau.get(enforcement_bureau.DEBTS_PATH, params={"stir": BOGISHAMOL}).json()
    assert company["qarzdor"]["turi"] == "yuridik" and len(company["ishlar"]) == 1
    closed = bureau.get(enforcement_bureau.DEBTS_PATH, params={"jshshir": AZIZ.pinfl}).json()
    assert closed["ishlar"] == [] and closed["jami_qoldiq"] == "0.00"


@pytest.mark.parametrize("params", [
    {}, {"jshshir": AZIZ.pinfl, "stir": BOGISHAMOL}, {"jshshir": "1"}, {"stir": "abc"},
])
def test_enforcement_bureau_refuses_what_it_cannot_read(
    bureau: httpx.Client, params: dict[str, str]
) -> None:
    r = bureau.get(enforcement_bureau.DEBTS_PATH, params=params)
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"


def test_residence_registry_certifies_length_and_residents(tmp_path: Path) -> None:
    app = residence_registry.create_app(tmp_path / "registry.db", today=lambda: TODAY)
    with serve_in_thread(app) as registry, httpx.Client(base_url=registry.url) as client:
        path = residence_registry.CERTIFICATE_PATH
        aziz = client.get(path.format(jshshir=AZIZ.pinfl)).json()
        assert (aziz["yashash_muddati"], aziz["yashovchilar_soni"], aziz["sana"]) == (
            {"yil": 11, "oy": 8}, 4, "04.12.2026")
        assert aziz["manzil"]["xonadon"] == "45"
        jasur = client.get(path.format(jshshir=JASUR.pinfl)).json()
        assert (jasur["yashash_muddati"], jasur["yashovchilar_soni"]) == ({"yil": 3, "oy": 3}, 1)
        assert client.get(path.format(jshshir=UNKNOWN_PINFL)).status_code == 404
        assert client.get(path.format(jshshir="12")).status_code == 400


@pytest.fixture
def agency(tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    path = tmp_path / "social.db"
    with serve_in_thread(social_protection.create_app(path, now=lambda: NOW)) as server, \
            httpx.Client(base_url=server.url) as client:
        yield client, path


def native_application(**change: Any) -> dict[str, Any]:
    return {"ariza_id": str(uuid.uuid4()), "arizachi": DILNOZA.pinfl,
            "bola": BENEFIT_CHILD.pinfl, "guvohnoma": BENEFIT_CHILD.certificate,
            "hisob_raqam": "2" * 20, "dalillar": ["BUS-2026-000001-1"], **change}


def test_social_register_answers_eligibility(agency: tuple[httpx.Client, Path]) -> None:
    client, _ = agency
    path = social_protection.ELIGIBILITY_PATH
    dilnoza = client.get(path.format(jshshir=DILNOZA.pinfl)).json()
    assert (dilnoza["reestrda"], dilnoza["asos"], len(dilnoza["tolangan"])) == (
        True, "kam_taminlangan", 2)
    assert BENEFIT_CHILD.pinfl not in dilnoza["tolangan"]
    nobody = client.get(path.format(jshshir=UNKNOWN_PINFL)).json()
    assert (nobody["reestrda"], nobody["asos"], nobody["tolangan"]) == (False, None, [])


def test_an_application_is_recorded_once_under_its_id(agency: tuple[httpx.Client, Path]) -> None:
    client, db = agency
    first = native_application()
    created = client.post(social_protection.APPLICATIONS_PATH, json=first)
    assert created.status_code == 201
    assert created.json() == {"ariza_id": first["ariza_id"], "raqam": "IH-2026-000001",
                              "qabul_qilingan": NOW.isoformat(), "qaror_muddati": "14.12.2026",
                              "holat": "qabul_qilindi"}
    again = client.post(social_protection.APPLICATIONS_PATH, json=first)
    assert again.status_code == 200 and again.json() == created.json()
    other = client.post(social_protection.APPLICATIONS_PATH,
                        json={**first, "hisob_raqam": "3" * 20})
    assert other.status_code == 409
    assert social_protection.applications_recorded(db, first["ariza_id"]) == 1
    second = client.post(social_protection.APPLICATIONS_PATH, json=native_application())
    assert second.status_code == 201 and second.json()["raqam"] == "IH-2026-000002"


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"ariza_id": "x"}',
])
def test_an_application_it_cannot_read_is_400(
    agency: tuple[httpx.Client, Path], body: bytes
) -> None:
    client, _ = agency
    r = client.post(social_protection.APPLICATIONS_PATH, content=body,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("change", [
    {"hisob_raqam": "12"}, {"dalillar": []}, {"dalillar": "BUS"}, {"arizachi": 42},
])
def test_an_application_with_a_wrong_field_is_400(
    agency: tuple[httpx.Client, Path], change: dict[str, Any]
) -> None:
    client, _ = agency
    r = client.post(social_protection.APPLICATIONS_PATH, json=native_application(**change))
    assert r.status_code == 400
