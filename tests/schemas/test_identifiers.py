"""PINFL and STIR validation, and masking of identifiers for display."""

from __future__ import annotations

import re

import pytest
from pydantic import TypeAdapter, ValidationError

from schemas import PINFL, STIR, mask_identifier
from schemas.identifiers import validate_pinfl, validate_stir

PINFL_ADAPTER: TypeAdapter[str] = TypeAdapter(PINFL)
STIR_ADAPTER: TypeAdapter[str] = TypeAdapter(STIR)

# G=3 (1900s), born 15.05.1986, district 123, serial 456, check digit 7.
VALID_PINFL = "31505861234567"


# --- PINFL ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        VALID_PINFL,
        "10101001234567",  # G=1: the 1800s, 01.01.1800
        "23112991234567",  # G=2: 31.12.1899
        "52902001234567",  # G=5: 29.02.2000, a leap year (divisible by 400)
        "62902241234567",  # G=6: 29.02.2024
    ],
)
def test_valid_pinfl_is_accepted_unchanged(value: str) -> None:
    assert PINFL_ADAPTER.validate_python(value) == value
    assert validate_pinfl(value) == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("3150586123456", "13 digits"),
        ("315058612345678", "15 digits"),
        ("", "empty"),
        ("01505861234567", "leading digit 0"),
        ("71505861234567", "leading digit 7"),
        ("81505861234567", "leading digit 8"),
        ("91505861234567", "leading digit 9"),
        ("3150586123456a", "a letter"),
        ("3150586 234567", "a space"),
        ("-1505861234567", "a sign"),
        ("3150586123456\u0663", "Arabic-Indic digit three"),
        ("\u0663\u0661\u0665\u0660\u0665\u0668\u0666\u0661\u0662\u0663\u0664\u0665\u0666\u0667",
         "all Arabic-Indic digits"),
        ("3150586123456\uff17", "fullwidth digit seven"),
        ("3150586123456\u0967", "Devanagari digit one"),
        ("33205861234567", "day 32"),
        ("30005861234567", "day 00"),
        ("31513861234567", "month 13"),
        ("31500861234567", "month 00"),
        ("33104861234567", "31 April"),
        ("32902011234567", "29.02.1901, not a leap year"),
        ("42902001234567", "29.02.1900: G=4 means the 1900s, and 1900 is not a leap year"),
        ("12902001234567", "29.02.1800: G=1 means the 1800s, and 1800 is not a leap year"),
        ("63002241234567", "30 February"),
        (VALID_PINFL + "\n", "a trailing newline"),
        (" " + VALID_PINFL[1:], "a leading space instead of a digit"),
    ],
)
def test_invalid_pinfl_is_refused(value: str, why: str) -> None:
    with pytest.raises(ValidationError):
        PINFL_ADAPTER.validate_python(value)


@pytest.mark.parametrize(
    "value",
    ["33205861234567", "31513861234567", "71505861234567", "3150586123456\u0663"],
)
def test_validate_pinfl_raises_value_error_without_pydantic(value: str) -> None:
    with pytest.raises(ValueError, match="PINFL"):
        validate_pinfl(value)


def test_the_century_digit_decides_the_leap_year() -> None:
    # The same DDMMYY 290200 is a real date in 2000 (G=5/6) but not in 1900 (G=3/4).
    assert PINFL_ADAPTER.validate_python("52902001234567")
    assert PINFL_ADAPTER.validate_python("62902001234567")
    for g in "34":
        with pytest.raises(ValidationError):
            PINFL_ADAPTER.validate_python(g + "2902001234567")


def test_pinfl_refuses_non_strings() -> None:
    with pytest.raises(ValidationError):
        PINFL_ADAPTER.validate_python(31505861234567)


def test_pinfl_date_error_says_what_is_wrong() -> None:
    with pytest.raises(ValidationError) as info:
        PINFL_ADAPTER.validate_python("31513861234567")
    assert "date of birth" in str(info.value)


def test_pinfl_json_schema_has_the_length_constraints() -> None:
    schema = PINFL_ADAPTER.json_schema()
    assert schema["type"] == "string"
    assert schema["minLength"] == 14
    assert schema["maxLength"] == 14


def test_pinfl_json_schema_pattern_agrees_with_the_validator() -> None:
    """Other parties validate with the JSON Schema alone: its pattern must refuse what we refuse."""
    pattern = re.compile(PINFL_ADAPTER.json_schema()["pattern"])
    assert pattern.search(VALID_PINFL)
    for bad in ["01505861234567", "71505861234567", "3150586123456a", "3150586123456",
                "315058612345678", "x" + VALID_PINFL, VALID_PINFL + "x"]:
        assert not pattern.search(bad), bad


# --- STIR -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["301234567", "100000000", "999999999"])
def test_valid_stir_is_accepted(value: str) -> None:
    assert STIR_ADAPTER.validate_python(value) == value
    assert validate_stir(value) == value


@pytest.mark.parametrize(
    "value",
    ["012345678", "30123456", "3012345678", "30123456a", "", "30123456\u0663",
     "30123456\uff17", "301234567\n", 301234567],
)
def test_invalid_stir_is_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        STIR_ADAPTER.validate_python(value)


def test_stir_json_schema_has_the_constraints() -> None:
    schema = STIR_ADAPTER.json_schema()
    assert (schema["minLength"], schema["maxLength"]) == (9, 9)
    pattern = re.compile(schema["pattern"])
    assert pattern.search("301234567")
    assert not pattern.search("012345678")
    assert not pattern.search("30123456a")


# --- masking ----------------------------------------------------------------------------------


def test_mask_pinfl_keeps_only_two_characters_at_each_end() -> None:
    assert mask_identifier(VALID_PINFL) == "31" + "*" * 10 + "67"


def test_mask_stir() -> None:
    assert mask_identifier("301234567") == "30*****67"


@pytest.mark.parametrize("value", [None, ""])
def test_mask_nothing_is_a_dash(value: str | None) -> None:
    assert mask_identifier(value) == "-"


@pytest.mark.parametrize("value", ["1", "12", "123", "1234"])
def test_mask_short_values_entirely(value: str) -> None:
    assert mask_identifier(value) == "*" * len(value)


@pytest.mark.parametrize("length", range(5, 40))
def test_mask_never_reveals_the_middle(length: int) -> None:
    value = "".join(str((7 * i + 3) % 10) for i in range(length))
    masked = mask_identifier(value)
    assert len(masked) == length
    assert masked[2:-2] == "*" * (length - 4)
