"""One short line about a service's answer, for the demo's tables (never a whole payload, and
no identifiers: the tables show subjects masked)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from demo.node_config import (
    CHILD_BENEFIT,
    CIVIL,
    DEBTS,
    ELIGIBILITY,
    PERMANENT_REGISTRATION,
    PROPERTY,
    RESIDENCE_LENGTH,
    SALARY,
    STUDY,
)

__all__ = ["summary"]


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _civil(p: dict[str, Any]) -> str:
    return f"{p.get('number', '?')}, {_plural(len(p.get('parents', [])), 'parent', 'parents')}"


def _salary(p: dict[str, Any]) -> str:
    periods = p.get("periods", [])
    months = sum(len(period.get("monthly", [])) for period in periods)
    service = p.get("total_service", {})
    return (f"{_plural(len(periods), 'employer', 'employers')}, {months} monthly amounts, "
            f"service {service.get('years', '?')}y {service.get('months', '?')}m")


def _study(p: dict[str, Any]) -> str:
    latest = (p.get("studies") or [{}])[0]
    course = f", year {latest['course']}" if latest.get("course") else ""
    return f"{latest.get('level', '?')}, {latest.get('form', '?')}, {latest.get('status', '?')}" \
           f"{course}"


def _debts(p: dict[str, Any]) -> str:
    cases = len(p.get("cases", []))
    if not cases:
        return f"{p.get('debtor_kind', '?')}: no open cases"
    return f"{p.get('debtor_kind', '?')}: {_plural(cases, 'open case', 'open cases')}, " \
           f"{float(p.get('total_outstanding', 0)):,.0f} UZS due"


def _length(p: dict[str, Any]) -> str:
    return f"{p.get('years', '?')}y {p.get('months', '?')}m at the address, " \
           f"{_plural(int(p.get('residents', 0)), 'resident', 'residents')}"


def _eligibility(p: dict[str, Any]) -> str:
    return ("eligible" if p.get("eligible") else "not eligible") + \
        f" ({', '.join(p.get('reasons', []))})"


def _receipt(p: dict[str, Any]) -> str:
    return f"receipt {p.get('receipt_number', '?')}, decision by {p.get('decision_due_on', '?')}"


def _decision(p: dict[str, Any]) -> str:
    return f"{p.get('decision', '?')} on {p.get('decided_on', '?')}"


def _property(p: dict[str, Any]) -> str:
    return _plural(len(p.get("properties", [])), "property", "properties")


def _residence(p: dict[str, Any]) -> str:
    return f"{p.get('kind', '?')}, {p.get('address', {}).get('region', '?')}"


_BY_SERVICE: dict[str, Callable[[dict[str, Any]], str]] = {
    CIVIL: _civil, PROPERTY: _property, SALARY: _salary, STUDY: _study, DEBTS: _debts,
    RESIDENCE_LENGTH: _length, ELIGIBILITY: _eligibility, CHILD_BENEFIT: _receipt,
    PERMANENT_REGISTRATION: _decision,
}


def summary(service: str, payload: dict[str, Any]) -> str:
    """A short line about an answer's payload (the residence record's, by default)."""
    return _BY_SERVICE.get(service, _residence)(payload)
