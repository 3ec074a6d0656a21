"""The birth-certificate shared schema."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas import BirthCertificateRequest


def test_asked_by_pinfl_or_by_number_and_the_subject_follows() -> None:
    assert BirthCertificateRequest(pinfl="61203186540019").subject() == "61203186540019"
    assert BirthCertificateRequest(number="I-TN 0451207").subject() == "I-TN 0451207"


@pytest.mark.parametrize(
    "body",
    [{}, {"pinfl": "61203186540019", "number": "I-TN 0451207"}, {"number": "0451207"},
     {"pinfl": "61313186540019"}, {"number": "I-TN 0451207", "extra": 1}],
)
def test_exactly_one_well_formed_key(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BirthCertificateRequest.model_validate(body)
