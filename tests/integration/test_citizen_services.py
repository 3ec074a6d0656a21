"""The services citizens ask for, end to end through the bus: each asked as the portal would
(plain HTTP) and by a stock zeep client on the node's generated WSDL, each answer signed by its
agency; the transactional ones recorded once per application however often they are sent."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import requests
import zeep

from demo.archive import poll_result, wait_for_task
from demo.child_benefit import BANK_ACCOUNT, apply_for_benefit
from demo.data import AZIZ, BOBUR, DILNOZA, JASUR, MALIKA, UNKNOWN_PINFL
from demo.node_config import (
    CHILD_BENEFIT,
    DEBTS,
    ELIGIBILITY,
    PERMANENT_REGISTRATION,
    RESIDENCE_LENGTH,
    SALARY,
    STUDY,
)
from demo.permanent_registration import decide, file_application
from demo.records import (
    BENEFIT_CHILD,
    BOGISHAMOL,
    UNKNOWN_STIR,
    jobs_of,
    monthly_salaries,
    open_cases,
    studies_of,
)
from demo.scenario import DemoStack, verify_answer
from demo.social_protection import applications_recorded

pytestmark = pytest.mark.slow


def ask(portal: httpx.Client, service: str, body: dict[str, Any], purpose: str,
        **params: str) -> httpx.Response:
    return portal.post(f"/v1/services/{service}", json=body, params=params,
                       headers={"X-Bus-Purpose": purpose})


def signed_by(stack: DemoStack, answer: dict[str, Any], service: str) -> bool:
    provider = service.split("/")[0]
    return verify_answer(answer, stack.trust_for(provider), provider)


def payload(stack: DemoStack, r: httpx.Response, service: str) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    assert signed_by(stack, r.json(), service)
    assert r.headers["X-Bus-Request-Number"]
    return dict(r.json()["payload"])


def full_months(since: dt.date, today: dt.date) -> int:
    return (today.year - since.year) * 12 + today.month - since.month - (today.day < since.day)


# --- plain HTTP, as the portal ---------------------------------------------------------------


def test_salary_certificate_lists_employers_amounts_and_service(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    body = {"pinfl": MALIKA.pinfl, "from_year": 2024, "to_year": 2024}
    got = payload(demo_stack, ask(portal, SALARY, body, "pension-assignment"), SALARY)
    jobs = jobs_of(MALIKA)
    assert [p["employer_stir"] for p in got["periods"]] == [j.employer_stir for j in jobs]
    assert got["periods"][0]["monthly"] == []  # her first job ended in 2010
    expected = [(m, a) for m, a in monthly_salaries(jobs[1]) if m.startswith("2024-")]
    assert [(m["month"], Decimal(m["amount"])) for m in got["periods"][1]["monthly"]] == expected
    assert len(expected) == 12 and got["periods"][1]["ended_on"] is None
    # 13y 7m 17d at the mill, then the hospital from 1 May 2010 to the day asked (inclusive);
    # 30 days make a month
    end = dt.date.fromisoformat(got["as_of"]) + dt.timedelta(days=1)
    months = full_months(dt.date(2010, 5, 1), end)
    anchor = dt.date(2010 + (4 + months) // 12, (4 + months) % 12 + 1, 1)
    days = 17 + (end - anchor).days
    months += 13 * 12 + 7 + days // 30
    assert got["total_service"] == {"years": months // 12, "months": months % 12,
                                    "days": days % 30}
    assert got["full_name"] == MALIKA.full_name


def test_salary_certificate_of_someone_never_insured_or_for_another_purpose(
    portal: httpx.Client,
) -> None:
    r = ask(portal, SALARY, {"pinfl": BOBUR.pinfl}, "pension-assignment")
    assert r.status_code == 404 and r.json()["code"] == "no-data"
    r = ask(portal, SALARY, {"pinfl": MALIKA.pinfl}, "student-allowance")
    assert r.status_code == 403 and r.json()["code"] == "access-denied"
    r = ask(portal, SALARY, {"pinfl": MALIKA.pinfl, "from_year": 2025, "to_year": 2020},
            "pension-assignment")  # a range of no year: the periods, no monthly amounts
    assert r.status_code == 200, r.text


def test_certificate_of_study_from_the_register_database(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    got = payload(demo_stack, ask(portal, STUDY, {"pinfl": JASUR.pinfl}, "student-allowance"),
                  STUDY)
    (study,) = got["studies"]
    (record,) = studies_of(JASUR.pinfl)
    assert (study["institution"], study["institution_stir"], study["level"], study["form"],
            study["course"], study["status"], study["ends_on"]) == (
        record.institution, record.institution_stir, "higher", "full-time", 3, "studying",
        "2027-06-30")
    both = payload(demo_stack, ask(portal, STUDY, {"pinfl": DILNOZA.pinfl}, "military-deferment"),
                   STUDY)["studies"]
    assert [s["level"] for s in both] == ["higher", "secondary-special"]  # the latest first
    assert [s["form"] for s in both] == ["part-time", "full-time"]
    r = ask(portal, STUDY, {"pinfl": AZIZ.pinfl}, "student-allowance")
    assert r.status_code == 404 and r.json()["code"] == "no-data"


def test_debts_of_a_person_and_of_a_legal_person(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    person = payload(demo_stack, ask(portal, DEBTS, {"pinfl": BOBUR.pinfl},
                                     "notary-transaction"), DEBTS)
    cases = open_cases(pinfl=BOBUR.pinfl)
    assert person["debtor_kind"] == "person" and person["pinfl"] == BOBUR.pinfl
    assert [c["number"] for c in person["cases"]] == [c.number for c in cases]
    assert [c["creditor"]["stir"] for c in person["cases"]] == [c.creditor_stir for c in cases]
    assert Decimal(person["total_outstanding"]) == Decimal("21500000.00")
    assert person["cases"][1]["restrictions"] == ["travel-ban"]
    company = payload(demo_stack, ask(portal, DEBTS, {"stir": BOGISHAMOL}, "exit-permit"),
                      DEBTS)
    assert company["debtor_kind"] == "legal-person" and company["stir"] == BOGISHAMOL
    assert [(c["number"], Decimal(c["amount_outstanding"])) for c in company["cases"]] == [
        ("26/14/000958", Decimal("41000000.00"))]
    for body in ({"pinfl": AZIZ.pinfl}, {"stir": UNKNOWN_STIR}):  # a closed case; nothing known
        none = payload(demo_stack, ask(portal, DEBTS, body, "notary-transaction"), DEBTS)
        assert none["cases"] == [] and Decimal(none["total_outstanding"]) == 0


@pytest.mark.parametrize("body", [
    {"pinfl": AZIZ.pinfl, "stir": BOGISHAMOL}, {}, {"stir": "012345678"}, {"stir": "30611223"},
])
def test_a_debt_check_names_exactly_one_well_formed_debtor(
    portal: httpx.Client, body: dict[str, str]
) -> None:
    r = ask(portal, DEBTS, body, "notary-transaction")
    assert r.status_code == 422 and r.json()["code"] == "schema-invalid"


def test_length_of_residence_and_the_people_registered_there(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    got = payload(demo_stack, ask(portal, RESIDENCE_LENGTH, {"pinfl": AZIZ.pinfl},
                                  "social-assistance"), RESIDENCE_LENGTH)
    assert got["registered_since"] == "2015-04-02" and got["kind"] == "permanent"
    assert got["residents"] == 4  # the couple and two of their children
    months = full_months(dt.date(2015, 4, 2), dt.date.fromisoformat(got["as_of"]))
    assert (got["years"], got["months"]) == (months // 12, months % 12)
    student = payload(demo_stack, ask(portal, RESIDENCE_LENGTH, {"pinfl": JASUR.pinfl},
                                      "housing-subsidy"), RESIDENCE_LENGTH)
    assert (student["kind"], student["residents"]) == ("temporary", 1)
    r = ask(portal, RESIDENCE_LENGTH, {"pinfl": BOBUR.pinfl}, "social-assistance")
    assert r.status_code == 404


def test_eligibility_from_the_social_register(demo_stack: DemoStack, portal: httpx.Client) -> None:
    mother = payload(demo_stack, ask(portal, ELIGIBILITY, {"pinfl": DILNOZA.pinfl},
                                     "child-benefit"), ELIGIBILITY)
    assert (mother["eligible"], mother["register_number"], mother["reasons"]) == (
        True, "IHR-10-0045871", ["low-income-family"])
    assert BENEFIT_CHILD.pinfl not in mother["birth_benefit_paid_for"]
    assert len(mother["birth_benefit_paid_for"]) == 2
    student = payload(demo_stack, ask(portal, ELIGIBILITY, {"pinfl": JASUR.pinfl},
                                      "child-benefit"), ELIGIBILITY)
    assert (student["eligible"], student["in_social_register"], student["reasons"]) == (
        False, False, ["not-in-register"])
    r = ask(portal, ELIGIBILITY, {"pinfl": JASUR.pinfl}, "social-assistance")
    assert r.status_code == 403


def test_the_benefit_application_assembles_its_evidence_once_only_and_is_recorded_once(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    assert demo_stack.agencies is not None
    db = demo_stack.agencies.social_db
    run = apply_for_benefit(portal)
    assert [p["status"] for p in run.parts] == [200] * 4  # one bundle: four agencies' answers
    assert {p["service"].split("/")[0] for p in run.parts} == {
        "civil-registry", "residence-registry", "social-protection"}
    for part in run.parts:
        assert signed_by(demo_stack, part["answer"], part["service"])
    assert run.submitted is not None and run.retried is not None
    receipt = payload(demo_stack, run.submitted, CHILD_BENEFIT)
    again = payload(demo_stack, run.retried, CHILD_BENEFIT)
    assert receipt == again and receipt["status"] == "received"
    assert receipt["receipt_number"].startswith(f"IH-{dt.date.today().year}-")
    received = dt.datetime.fromisoformat(receipt["received_at"]).date()
    assert dt.date.fromisoformat(receipt["decision_due_on"]) == received + dt.timedelta(days=10)
    assert applications_recorded(db, run.application_id) == 1
    # the same application id with other content is refused, and nothing more is recorded
    changed = {"application_id": run.application_id, "applicant_pinfl": DILNOZA.pinfl,
               "child_pinfl": BENEFIT_CHILD.pinfl, "birth_certificate": BENEFIT_CHILD.certificate,
               "bank_account": "1" * 20, "evidence": run.numbers}
    r = ask(portal, CHILD_BENEFIT, changed, "child-benefit")
    assert r.status_code == 502 and r.json()["code"] == "provider-rejected"
    assert applications_recorded(db, run.application_id) == 1
    # another application is another record with its own number
    other = payload(demo_stack, ask(portal, CHILD_BENEFIT, {
        **changed, "application_id": str(uuid.uuid4()), "bank_account": BANK_ACCOUNT},
        "child-benefit"), CHILD_BENEFIT)
    assert other["receipt_number"] != receipt["receipt_number"]


@pytest.mark.parametrize("change", [
    {"evidence": []}, {"evidence": ["not-a-number"]}, {"bank_account": "123"},
    {"application_id": "x"}, {"birth_certificate": "I-TN 12"},
])
def test_a_malformed_application_is_refused_before_it_leaves(
    demo_stack: DemoStack, portal: httpx.Client, change: dict[str, Any]
) -> None:
    assert demo_stack.agencies is not None
    application_id = str(uuid.uuid4())
    body = {"application_id": application_id, "applicant_pinfl": DILNOZA.pinfl,
            "child_pinfl": BENEFIT_CHILD.pinfl, "birth_certificate": BENEFIT_CHILD.certificate,
            "bank_account": BANK_ACCOUNT, "evidence": ["BUS-2026-000001-1"], **change}
    r = ask(portal, CHILD_BENEFIT, body, "child-benefit")
    assert r.status_code == 422 and r.json()["code"] == "schema-invalid"
    assert applications_recorded(demo_stack.agencies.social_db, application_id) == 0


def test_a_permanent_registration_is_filed_once_and_decided_by_an_official(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    desk = demo_stack.node.inbox
    assert desk is not None
    filing = file_application(portal)
    assert filing.evidence.status_code == 200
    assert (filing.first.status_code, filing.again.status_code) == (202, 202)
    wait_for_task(desk, filing.message_id)
    repeated = poll_result(portal, filing.again.headers["Location"])
    assert repeated.status_code == 502 and repeated.json()["code"] == "provider-rejected"
    assert filing.message_id in repeated.json()["detail"]
    mine = [t for t in desk.tasks(service=PERMANENT_REGISTRATION)
            if t.request["application_id"] == filing.application_id]
    assert [t.id for t in mine] == [filing.message_id]
    assert mine[0].request["evidence"] == [filing.evidence.headers["X-Bus-Request-Number"]]
    decide(desk, filing.message_id, today=dt.date(2026, 12, 4))
    result = poll_result(portal, filing.first.headers["Location"])
    got = payload(demo_stack, result, PERMANENT_REGISTRATION)
    assert got == {"application_id": filing.application_id, "decision": "registered",
                   "decided_on": "2026-12-04", "registered_on": "2026-12-04", "reason": None}
    # a decision once given is not given twice, and a synchronous ask is refused
    r = ask(portal, PERMANENT_REGISTRATION, {
        "application_id": str(uuid.uuid4()), "pinfl": BOBUR.pinfl, "ground": "ownership",
        "address": {"region": "r", "district": "d", "street": "s", "house": "1"}},
        "residence-registration")
    assert r.status_code == 400 and r.json()["code"] == "async-required"


# --- a stock zeep client on the node's generated WSDL, one call per new service -------------


@pytest.fixture
def zeep_client(demo_stack: DemoStack) -> Iterator[Any]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {demo_stack.token}"

    def client(service: str) -> zeep.Client:
        return zeep.Client(f"{demo_stack.gateway.url}/soap/{service}?wsdl",
                           transport=zeep.Transport(session=session))

    yield client
    session.close()


def context(purpose: str, **extra: str) -> dict[str, Any]:
    return {"BusContext": {"Purpose": purpose, "User": "registry-clerk-4", **extra}}


@pytest.mark.parametrize(("service", "kwargs", "purpose", "check"), [
    (SALARY, {"pinfl": DILNOZA.pinfl, "from_year": 2025, "to_year": 2025}, "pension-assignment",
     lambda a: [len(p.monthly) for p in a.periods] == [12]
     and a.periods[0].employer_stir == "201234567"),
    (STUDY, {"pinfl": JASUR.pinfl}, "student-allowance",
     lambda a: a.studies[0].course == 3 and a.studies[0].started_on == dt.date(2023, 9, 1)),
    (DEBTS, {"stir": BOGISHAMOL}, "notary-transaction",
     lambda a: a.debtor_kind == "legal-person" and a.total_outstanding == Decimal("41000000")),
    (DEBTS, {"pinfl": BOBUR.pinfl}, "notary-transaction",
     lambda a: [c.number for c in a.cases] == ["25/14/002207", "26/14/000311"]),
    (RESIDENCE_LENGTH, {"pinfl": DILNOZA.pinfl}, "social-assistance",
     lambda a: a.residents == 4 and a.registered_since == dt.date(2015, 4, 2)),
    (ELIGIBILITY, {"pinfl": MALIKA.pinfl}, "child-benefit",
     lambda a: a.eligible and a.reasons == ["disability"]),
    (ELIGIBILITY, {"pinfl": UNKNOWN_PINFL}, "child-benefit",
     lambda a: not a.eligible and a.reasons == ["not-in-register"]),
])
def test_a_stock_zeep_client_asks_each_new_service(
    demo_stack: DemoStack, zeep_client: Any, service: str, kwargs: dict[str, Any],
    purpose: str, check: Any,
) -> None:
    client = zeep_client(service)
    (binding,) = client.wsdl.bindings.values()
    operation = next(op for op in binding._operations if op != "GetResult")
    answer = getattr(client.service, operation)(**kwargs, _soapheaders=context(purpose))
    response = getattr(answer, operation.removeprefix("Get"))
    assert check(response)
    assert signed_by(demo_stack, json.loads(answer.SignedAnswer), service)
    assert answer.RequestNumber.startswith("BUS-")


def test_a_zeep_client_submits_the_benefit_application_twice_and_one_is_recorded(
    demo_stack: DemoStack, zeep_client: Any
) -> None:
    assert demo_stack.agencies is not None
    application_id = str(uuid.uuid4())
    service = zeep_client(CHILD_BENEFIT).service
    receipts = [service.GetChildBirthBenefitReceipt(
        application_id=application_id, applicant_pinfl=DILNOZA.pinfl,
        child_pinfl=BENEFIT_CHILD.pinfl, birth_certificate=BENEFIT_CHILD.certificate,
        bank_account=BANK_ACCOUNT, evidence=["BUS-2026-000001-1", "BUS-2026-000002-9"],
        _soapheaders=context("child-benefit")) for _ in range(2)]
    numbers = {r.ChildBirthBenefitReceipt.receipt_number for r in receipts}
    assert len(numbers) == 1 and numbers.pop().startswith("IH-")
    assert str(receipts[0].ChildBirthBenefitReceipt.application_id) == application_id
    assert applications_recorded(demo_stack.agencies.social_db, application_id) == 1


def test_a_zeep_client_files_a_permanent_registration_asynchronously(
    demo_stack: DemoStack, zeep_client: Any
) -> None:
    desk = demo_stack.node.inbox
    assert desk is not None
    service = zeep_client(PERMANENT_REGISTRATION).service
    accepted = service.GetPermanentRegistrationDecision(
        application_id=str(uuid.uuid4()), pinfl=JASUR.pinfl, ground="owner-consent",
        owner_pinfl=AZIZ.pinfl, address={"region": "Toshkent shahri",
                                         "district": "Yunusobod tumani",
                                         "street": "Amir Temur ko'chasi", "house": "108",
                                         "apartment": "45"},
        _soapheaders=context("residence-registration", Mode="async"))
    assert accepted.State == "pending"
    wait_for_task(desk, accepted.MessageId)
    task = desk.task(accepted.MessageId)
    assert task.request["owner_pinfl"] == AZIZ.pinfl and task.request["evidence"] == []
    decide(desk, accepted.MessageId, today=dt.date(2026, 12, 4))  # no evidence: refused
    with httpx.Client(base_url=demo_stack.gateway.url,
                      headers={"Authorization": f"Bearer {demo_stack.token}"}) as portal:
        result = poll_result(portal, f"/v1/messages/{accepted.MessageId}")
    got = payload(demo_stack, result, PERMANENT_REGISTRATION)
    assert (got["decision"], got["registered_on"]) == ("refused", None) and got["reason"]
    done = service.GetResult(MessageId=accepted.MessageId)
    assert done.State == "done"
    assert done.PermanentRegistrationDecision.decision == "refused"
