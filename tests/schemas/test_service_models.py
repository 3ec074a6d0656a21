"""The shared schemas of the services citizens ask for: what they accept, refuse, and export."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import (
    BenefitEligibilityRequest,
    ChildBirthBenefitApplication,
    ChildBirthBenefitReceipt,
    DebtCheck,
    DebtCheckRequest,
    PermanentRegistrationApplication,
    PermanentRegistrationDecision,
    ResidenceDuration,
    ResidenceDurationRequest,
    SalaryCertificate,
    SalaryCertificateRequest,
    StudyCertificate,
    StudyCertificateRequest,
    export_json_schemas,
)

PINFL = "42203902740025"
CHILD = "61810266540045"
STIR = "306112233"
MODELS = [SalaryCertificateRequest, SalaryCertificate, StudyCertificateRequest, StudyCertificate,
          DebtCheckRequest, DebtCheck, ResidenceDurationRequest, ResidenceDuration,
          BenefitEligibilityRequest, ChildBirthBenefitApplication, ChildBirthBenefitReceipt,
          PermanentRegistrationApplication, PermanentRegistrationDecision]


def application(**change: Any) -> dict[str, Any]:
    return {"application_id": str(uuid.uuid4()), "applicant_pinfl": PINFL, "child_pinfl": CHILD,
            "birth_certificate": "I-TN 1187302", "bank_account": "2" * 20,
            "evidence": ["BUS-2026-000123-7"], **change}


def test_a_debt_check_is_about_a_person_or_a_legal_person_and_says_which() -> None:
    assert DebtCheckRequest(pinfl=PINFL).subject() == PINFL
    assert DebtCheckRequest(stir=STIR).subject() == STIR
    for body in ({}, {"pinfl": PINFL, "stir": STIR}):
        with pytest.raises(ValidationError, match="exactly one"):
            DebtCheckRequest.model_validate(body)
    with pytest.raises(ValidationError, match="STIR must be 9 digits"):
        DebtCheckRequest(stir="012345678")


def test_the_years_of_a_salary_certificate_are_in_order() -> None:
    assert SalaryCertificateRequest(pinfl=PINFL, from_year=2021, to_year=2021).to_year == 2021
    # a range that ends before it begins is no year at all, not a malformed request
    assert SalaryCertificateRequest(pinfl=PINFL, from_year=2022, to_year=2021).from_year == 2022
    with pytest.raises(ValidationError):
        SalaryCertificateRequest(pinfl=PINFL, from_year=1900)


def test_an_application_names_its_applicant_and_well_formed_evidence() -> None:
    assert ChildBirthBenefitApplication.model_validate(application()).subject() == PINFL
    for change in ({"evidence": []}, {"evidence": ["BUS-26-1-1"]}, {"bank_account": "1" * 19},
                   {"application_id": "not-a-uuid"}, {"birth_certificate": "1187302"},
                   {"child_pinfl": "71810266540045"}, {"extra": 1}):
        with pytest.raises(ValidationError):
            ChildBirthBenefitApplication.model_validate(application(**change))
    registration = PermanentRegistrationApplication.model_validate({
        "application_id": str(uuid.uuid4()), "pinfl": PINFL, "ground": "ownership",
        "address": {"region": "r", "district": "d", "street": "s", "house": "1"}})
    assert registration.subject() == PINFL and registration.evidence == []


def test_the_exported_schemas_carry_the_identifier_constraints(tmp_path: Path) -> None:
    written = export_json_schemas(MODELS, tmp_path)
    assert [p.name for p in written] == [f"{m.__name__}.schema.json" for m in MODELS]
    debt = json.loads((tmp_path / "DebtCheckRequest.schema.json").read_text())
    stir = next(s for s in debt["properties"]["stir"]["anyOf"] if s.get("type") == "string")
    assert re.fullmatch(stir["pattern"].strip("^$"), STIR) and stir["maxLength"] == 9
    app = json.loads((tmp_path / "ChildBirthBenefitApplication.schema.json").read_text())
    assert app["additionalProperties"] is False
    assert app["properties"]["application_id"]["format"] == "uuid"
    assert re.match(app["properties"]["evidence"]["items"]["pattern"], "BUS-2026-000123-7")
    assert app["properties"]["evidence"]["minItems"] == 1
    salary = json.loads((tmp_path / "SalaryCertificate.schema.json").read_text())
    assert {"EmploymentPeriod", "MonthlySalary", "ServiceLength"} <= set(salary["$defs"])
    study = json.loads((tmp_path / "StudyCertificate.schema.json").read_text())
    assert study["$defs"]["Study"]["properties"]["level"]["enum"] == [
        "higher", "secondary-special"]
