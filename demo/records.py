"""What the demo's other agencies know about the fictional people of ``demo.data``. Deterministic.

Every PINFL and STIR is well formed (``schemas.identifiers``); none belongs to anyone.

=================  ===========================  =====================  ==========================
person             pension fund (jobs)          education register     enforcement bureau (open)
=================  ===========================  =====================  ==========================
Karimov Aziz       2 employers, 2008 - now      none (404)             none (one case closed)
Yusupova Dilnoza   1 employer, 2012 - now       college + university   none
Toshmatov Jasur    none (404)                   university, 3rd year   none
Rahimova Malika    2 employers, 1996 - now      none (404)             none
Aliyev Bobur       none (404)                   none (404)             2 cases (tax, bank)
=================  ===========================  =====================  ==========================

Legal persons: ``BOGISHAMOL`` (STIR 306112233) has one open case; ``UNKNOWN_STIR`` nothing.
The social register holds the Karimov family (low income) and Malika (disability); a one-time
child-birth benefit was paid for the Karimovs' Madina and Samandar, not yet for Laylo
(``demo.data.BIRTHS``). The residence registry also holds the Karimov children at their
parents' flat (``HOUSEHOLD``), so four people are registered there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from demo.data import AZIZ, BIRTHS, BOBUR, DILNOZA, JASUR, MALIKA, Person

__all__ = [
    "BENEFIT_CHILD",
    "BENEFIT_PAID",
    "BOGISHAMOL",
    "CASES",
    "CONTRIBUTIONS_UNTIL",
    "HOUSEHOLD",
    "JOBS",
    "SOCIAL_REGISTER",
    "STUDIES",
    "UNKNOWN_STIR",
    "Case",
    "Job",
    "RegisterEntry",
    "StudyRecord",
    "jobs_of",
    "monthly_salaries",
    "open_cases",
    "studies_of",
]

CONTRIBUTIONS_UNTIL = dt.date(2026, 10, 31)
"""The last month the pension fund holds contributions for (its data as of the demo)."""
UNKNOWN_STIR = "309999991"
"""Well formed, known to no agency."""
BOGISHAMOL = "306112233"
"""STIR of "Bog'ishamol agro" MChJ, a legal-person debtor."""


@dataclass(frozen=True)
class Job:
    """An employment period the pension fund knows, with the salary it started at."""

    pinfl: str
    employer_stir: str
    employer_name: str
    position: str
    started_on: dt.date
    ended_on: dt.date | None
    first_salary: Decimal  # UZS a month; raised by 9% every January after the first year


JOBS: tuple[Job, ...] = (
    Job(AZIZ.pinfl, "303456781", "Yunusobod qurilish MChJ", "muhandis",
        dt.date(2008, 9, 1), dt.date(2016, 12, 31), Decimal("850000")),
    Job(AZIZ.pinfl, "307891234", "Raqamli yechimlar AJ", "bosh muhandis",
        dt.date(2017, 2, 1), None, Decimal("4200000")),
    Job(DILNOZA.pinfl, "201234567", "Toshkent shahar 110-umumta'lim maktabi",
        "boshlang'ich sinf o'qituvchisi", dt.date(2012, 9, 1), None, Decimal("1500000")),
    Job(MALIKA.pinfl, "200987654", "Farg'ona to'qimachilik AJ", "to'quvchi",
        dt.date(1996, 8, 15), dt.date(2010, 3, 31), Decimal("45000")),
    Job(MALIKA.pinfl, "201555444", "Farg'ona viloyat ko'p tarmoqli tibbiyot markazi",
        "hamshira", dt.date(2010, 5, 1), None, Decimal("650000")),
)


def jobs_of(person: Person | str) -> list[Job]:
    pinfl = person if isinstance(person, str) else person.pinfl
    return sorted((j for j in JOBS if j.pinfl == pinfl), key=lambda j: j.started_on)


def monthly_salaries(job: Job) -> list[tuple[str, Decimal]]:
    """``(YYYY-MM, amount)`` of every month of ``job`` the fund holds contributions for."""
    end = min(job.ended_on or CONTRIBUTIONS_UNTIL, CONTRIBUTIONS_UNTIL)
    months = []
    year, month = job.started_on.year, job.started_on.month
    while (year, month) <= (end.year, end.month):
        raised = job.first_salary * Decimal("1.09") ** (year - job.started_on.year)
        thousands = (raised / 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        months.append((f"{year:04d}-{month:02d}", (thousands * 1000).quantize(Decimal("0.01"))))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@dataclass(frozen=True)
class StudyRecord:
    pinfl: str
    institution: str
    institution_stir: str
    level: Literal["higher", "secondary-special"]
    programme_code: str
    programme: str
    form: Literal["full-time", "part-time", "evening", "distance"]
    course: int | None
    started_on: dt.date
    ends_on: dt.date
    status: Literal["studying", "academic-leave", "graduated", "expelled"]
    funding: Literal["state-grant", "contract"]


STUDIES: tuple[StudyRecord, ...] = (
    StudyRecord(JASUR.pinfl, "Samarqand davlat universiteti", "200111222", "higher", "60610100",
                "Kompyuter ilmlari va dasturlash texnologiyalari", "full-time", 3,
                dt.date(2023, 9, 1), dt.date(2027, 6, 30), "studying", "state-grant"),
    StudyRecord(DILNOZA.pinfl, "Toshkent pedagogika kolleji", "200333444", "secondary-special",
                "3111101", "Boshlang'ich ta'lim", "full-time", None,
                dt.date(2005, 9, 1), dt.date(2008, 6, 30), "graduated", "state-grant"),
    StudyRecord(DILNOZA.pinfl, "Nizomiy nomidagi Toshkent davlat pedagogika universiteti",
                "200444555", "higher", "60110500", "Boshlang'ich ta'lim", "part-time", None,
                dt.date(2009, 9, 1), dt.date(2014, 6, 30), "graduated", "contract"),
)


def studies_of(pinfl: str) -> list[StudyRecord]:
    """The person's studies, the latest first (as the register lists them)."""
    return sorted((s for s in STUDIES if s.pinfl == pinfl), key=lambda s: s.started_on,
                  reverse=True)


@dataclass(frozen=True)
class Case:
    """An enforcement proceeding; ``closed_on`` set means finished (not reported as a debt)."""

    number: str
    debtor_pinfl: str | None
    debtor_stir: str | None
    opened_on: dt.date
    document: str
    issued_by: str
    creditor_name: str
    creditor_stir: str | None
    amount_due: Decimal
    amount_paid: Decimal
    restrictions: tuple[str, ...] = ()
    closed_on: dt.date | None = None


CASES: tuple[Case, ...] = (
    Case("26/14/000311", BOBUR.pinfl, None, dt.date(2026, 2, 10), "tax-authority-decision",
         "Chust tumani davlat soliq inspeksiyasi", "Chust tumani davlat soliq inspeksiyasi",
         "201777888", Decimal("4850000.00"), Decimal("1750000.00"), ("travel-ban",)),
    Case("25/14/002207", BOBUR.pinfl, None, dt.date(2025, 11, 3), "court-order",
         "Chust tumanlararo fuqarolik ishlari bo'yicha sudi", "Mikrokreditbank ATB", "203456789",
         Decimal("18400000.00"), Decimal("0.00"), ("vehicle-seizure",)),
    Case("24/10/004512", AZIZ.pinfl, None, dt.date(2024, 5, 20), "administrative-fine",
         "Yunusobod tumani IIB", "Yunusobod tumani IIB", "201222333",
         Decimal("340000.00"), Decimal("340000.00"), closed_on=dt.date(2024, 6, 11)),
    Case("26/14/000958", None, BOGISHAMOL, dt.date(2026, 6, 17), "writ-of-execution",
         "Namangan viloyati iqtisodiy sudi", "Hududiy elektr tarmoqlari AJ", "202049815",
         Decimal("62300000.00"), Decimal("21300000.00"), ("account-freeze",)),
)


def open_cases(*, pinfl: str | None = None, stir: str | None = None) -> list[Case]:
    """The debtor's open cases, the oldest first."""
    return sorted(
        (c for c in CASES if c.closed_on is None
         and ((pinfl is not None and c.debtor_pinfl == pinfl)
              or (stir is not None and c.debtor_stir == stir))),
        key=lambda c: c.opened_on,
    )


@dataclass(frozen=True)
class RegisterEntry:
    """A person in the social register (a family's entry, or a person's)."""

    pinfl: str
    number: str
    since: dt.date
    reason: Literal["low-income-family", "disability", "single-parent"]


SOCIAL_REGISTER: tuple[RegisterEntry, ...] = (
    RegisterEntry(AZIZ.pinfl, "IHR-10-0045871", dt.date(2025, 11, 1), "low-income-family"),
    RegisterEntry(DILNOZA.pinfl, "IHR-10-0045871", dt.date(2025, 11, 1), "low-income-family"),
    RegisterEntry(MALIKA.pinfl, "IHR-15-0012230", dt.date(2019, 3, 4), "disability"),
)
BENEFIT_PAID: tuple[tuple[str, str], ...] = tuple(
    (parent, child) for parent in (AZIZ.pinfl, DILNOZA.pinfl) for child in (
        BIRTHS[1].pinfl, BIRTHS[2].pinfl)
)
"""(parent, child): one-time birth benefits paid (the Karimovs' Madina and Samandar)."""
BENEFIT_CHILD = BIRTHS[4]
"""The Karimovs' newborn Laylo, for whom the demo applies for the benefit."""

HOUSEHOLD: tuple[Person, ...] = tuple(
    Person(b.pinfl, b.surname, b.given_name, b.patronymic,
           replace(AZIZ.residence, registered_on=b.registered_on + dt.timedelta(days=14)))
    for b in BIRTHS[1:3] if AZIZ.residence is not None
)
"""Children the residence registry holds at their parents' flat (not in ``demo.data.PEOPLE``:
no other agency knows them as adults)."""
