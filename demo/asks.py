"""The single exchanges the demo asks, as the portal would, and what each should answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from demo.data import BIRTHS, BOBUR, JASUR, MALIKA, PEOPLE, UNKNOWN_PINFL
from demo.node_config import CIVIL, DEBTS, PROPERTY, RESIDENCE, RESIDENCE_LENGTH, SALARY, STUDY
from demo.records import BOGISHAMOL

__all__ = ["Ask", "scenario_asks"]


@dataclass(frozen=True)
class Ask:
    """One request of the portal and how it should end (``expect``: the HTTP status)."""

    service: str
    pinfl: str
    purpose: str
    expect: int
    note: str
    body: dict[str, Any] | None = None  # default {"pinfl": pinfl}


def scenario_asks() -> list[Ask]:
    """The single exchanges of the demo's first table, in order."""
    with_property = [p for p in PEOPLE if p.properties]
    without_property = [p for p in PEOPLE if not p.properties]
    asks = [Ask(RESIDENCE, p.pinfl, "child-benefit", 200, "residence record") for p in PEOPLE[:2]]
    asks += [
        Ask(PROPERTY, p.pinfl, "housing-subsidy", 200, "owns property") for p in with_property[:2]
    ]
    asks += [
        Ask(PROPERTY, p.pinfl, "housing-subsidy", 200, "owns nothing") for p in without_property[:1]
    ]
    asks.append(Ask(CIVIL, BIRTHS[1].pinfl, "child-benefit", 200, "birth certificate (SOAP)"))
    by_number = BIRTHS[2]
    asks.append(
        Ask(CIVIL, by_number.certificate, "child-benefit", 200, "certificate by its number",
            body={"number": by_number.certificate})
    )
    asks += [
        Ask(SALARY, MALIKA.pinfl, "pension-assignment", 200, "salary and service (SOAP)",
            body={"pinfl": MALIKA.pinfl, "from_year": 2021, "to_year": 2025}),
        Ask(STUDY, JASUR.pinfl, "student-allowance", 200, "certificate of study (SQL)"),
        Ask(DEBTS, BOBUR.pinfl, "notary-transaction", 200, "debts of a person"),
        Ask(DEBTS, BOGISHAMOL, "notary-transaction", 200, "debts of a legal person (STIR)",
            body={"stir": BOGISHAMOL}),
        Ask(RESIDENCE_LENGTH, PEOPLE[0].pinfl, "social-assistance", 200, "length of residence"),
    ]
    asks.append(Ask(RESIDENCE, UNKNOWN_PINFL, "child-benefit", 404, "unknown to the registry"))
    asks.append(Ask(CIVIL, UNKNOWN_PINFL, "child-benefit", 404, "no birth record (SOAP Fault)"))
    asks.append(Ask(PROPERTY, PEOPLE[0].pinfl, "marketing", 403, "purpose not allowed"))
    return asks
