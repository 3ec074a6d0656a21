"""Shared request/response models and their JSON Schema export."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ValidationError

from schemas import (
    STIR,
    Address,
    OwnedProperty,
    PropertyOwnership,
    PropertyOwnershipRequest,
    ResidenceRegistration,
    ResidenceRegistrationRequest,
    SharedRequest,
    SharedResponse,
    export_json_schemas,
)

PINFL_VALUE = "31505861234567"


def residence() -> ResidenceRegistration:
    return ResidenceRegistration(
        pinfl=PINFL_VALUE,
        full_name="Karimova Dilnoza Rustamovna",
        address=Address(region="Toshkent shahri", district="Yunusobod tumani",
                        street="Amir Temur ko'chasi", house="107B", apartment="12"),
        kind="permanent",
        registered_on=dt.date(2015, 3, 2),
        valid_until=None,
    )


def ownership() -> PropertyOwnership:
    return PropertyOwnership(
        pinfl=PINFL_VALUE,
        properties=[
            OwnedProperty(cadastral_number="10:06:04:01:03:0042", kind="apartment",
                          address="Toshkent, Chilonzor 9-kvartal, 14-uy, 31",
                          area_m2=Decimal("54.30"), share="1/2",
                          registered_on=dt.date(2011, 11, 30)),
            OwnedProperty(cadastral_number="10:06:04:01:03:0043", kind="land",
                          address="Toshkent viloyati, Zangiota", area_m2=Decimal("600"),
                          share="1/1", registered_on=dt.date(2019, 6, 1)),
        ],
    )


# --- requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [ResidenceRegistrationRequest, PropertyOwnershipRequest])
def test_request_accepts_a_valid_pinfl_and_names_it_as_the_subject(
    model: type[SharedRequest],
) -> None:
    request = model(pinfl=PINFL_VALUE)  # type: ignore[call-arg]
    assert request.subject() == PINFL_VALUE


@pytest.mark.parametrize("model", [ResidenceRegistrationRequest, PropertyOwnershipRequest])
def test_request_refuses_extra_fields(model: type[SharedRequest]) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate({"pinfl": PINFL_VALUE, "full_name": "someone"})
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]
    assert info.value.errors()[0]["loc"] == ("full_name",)


@pytest.mark.parametrize("model", [ResidenceRegistrationRequest, PropertyOwnershipRequest])
def test_request_refuses_an_invalid_or_missing_pinfl(model: type[SharedRequest]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate({"pinfl": "71505861234567"})
    with pytest.raises(ValidationError):
        model.model_validate({})


def test_request_is_frozen() -> None:
    request = ResidenceRegistrationRequest(pinfl=PINFL_VALUE)
    with pytest.raises(ValidationError):
        request.pinfl = "52902001234567"  # type: ignore[misc]


def test_subject_follows_subject_field() -> None:
    class CompanyRequest(SharedRequest):
        subject_field: ClassVar[str] = "stir"
        stir: STIR

    assert CompanyRequest(stir="301234567").subject() == "301234567"


def test_subject_field_is_not_a_model_field() -> None:
    assert "subject_field" not in ResidenceRegistrationRequest.model_fields
    with pytest.raises(ValidationError):
        ResidenceRegistrationRequest.model_validate({"pinfl": PINFL_VALUE, "subject_field": "x"})


# --- responses --------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [residence, ownership])
def test_response_round_trips_through_json_mode(make: Any) -> None:
    original = make()
    dumped = original.model_dump(mode="json")
    # The JSON form is plain JSON (what travels in an envelope) ...
    assert json.loads(json.dumps(dumped)) == dumped
    # ... and validates back to an equal model, from the dict and from the JSON text.
    assert type(original).model_validate(dumped) == original
    assert type(original).model_validate_json(json.dumps(dumped)) == original
    assert type(original).model_validate(dumped).model_dump(mode="json") == dumped


def test_response_json_form_uses_iso_dates_and_decimal_strings() -> None:
    dumped = ownership().model_dump(mode="json")
    first = dumped["properties"][0]
    assert first["registered_on"] == "2011-11-30"
    assert Decimal(first["area_m2"]) == Decimal("54.30")
    assert residence().model_dump(mode="json")["registered_on"] == "2015-03-02"


def test_empty_property_list_is_a_valid_answer() -> None:
    empty = PropertyOwnership(pinfl=PINFL_VALUE, properties=[])
    assert PropertyOwnership.model_validate(empty.model_dump(mode="json")) == empty


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (ResidenceRegistration, {**residence().model_dump(mode="json"), "nationality": "uz"}),
        (ResidenceRegistration, {**residence().model_dump(mode="json"),
                                 "address": {**residence().address.model_dump(), "zip": "100000"}}),
        (PropertyOwnership, {"pinfl": PINFL_VALUE,
                             "properties": [{**ownership().properties[0].model_dump(mode="json"),
                                             "owner": "someone else"}]}),
    ],
)
def test_responses_refuse_unknown_fields_at_every_level(
    model: type[SharedResponse], data: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    assert {e["type"] for e in info.value.errors()} == {"extra_forbidden"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cadastral_number", "10:06:04:01:03:42"),
        ("kind", "castle"),
        ("area_m2", "0"),
        ("area_m2", "-5"),
        ("area_m2", "12.345"),
        ("share", "half"),
        ("address", "x" * 301),
    ],
)
def test_owned_property_constraints(field: str, value: str) -> None:
    data = ownership().properties[0].model_dump(mode="json")
    data[field] = value
    with pytest.raises(ValidationError):
        OwnedProperty.model_validate(data)


def test_residence_kind_is_a_closed_set() -> None:
    data = residence().model_dump(mode="json")
    data["kind"] = "holiday"
    with pytest.raises(ValidationError):
        ResidenceRegistration.model_validate(data)


def test_response_with_invalid_pinfl_is_refused() -> None:
    data = residence().model_dump(mode="json")
    data["pinfl"] = "33205861234567"
    with pytest.raises(ValidationError):
        ResidenceRegistration.model_validate(data)


# --- JSON Schema export -----------------------------------------------------------------------

ALL_MODELS: list[type[BaseModel]] = [
    ResidenceRegistrationRequest, ResidenceRegistration,
    PropertyOwnershipRequest, PropertyOwnership,
]
_JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}


def _walk(node: Any) -> Any:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _check_schema_shape(schema: dict[str, Any]) -> None:
    """A structural check of a JSON Schema (no validator library is a dependency)."""
    assert schema["type"] == "object"
    assert isinstance(schema["properties"], dict)
    assert set(schema.get("required", [])) <= set(schema["properties"])
    defs = schema.get("$defs", {})
    for node in _walk(schema):
        if not isinstance(node, dict):
            continue
        if "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/$defs/"), ref
            assert ref.removeprefix("#/$defs/") in defs, ref
        if isinstance(node.get("type"), str):
            assert node["type"] in _JSON_TYPES
        if "pattern" in node:
            re.compile(node["pattern"])


def test_export_writes_one_valid_schema_file_per_model(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "schemas"
    written = export_json_schemas(ALL_MODELS, out)
    assert written == [out / f"{m.__name__}.schema.json" for m in ALL_MODELS]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)
    for path, model in zip(written, ALL_MODELS, strict=True):
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert schema == model.model_json_schema()
        assert schema["title"] == model.__name__
        _check_schema_shape(schema)


def test_exported_schemas_carry_the_pinfl_constraints(tmp_path: Path) -> None:
    for path in export_json_schemas(ALL_MODELS, tmp_path):
        schema = json.loads(path.read_text(encoding="utf-8"))
        pinfl = schema["properties"]["pinfl"]
        assert "pinfl" in schema["required"], path.name
        assert (pinfl["minLength"], pinfl["maxLength"]) == (14, 14), path.name
        pattern = re.compile(pinfl["pattern"])
        assert pattern.search(PINFL_VALUE)
        assert not pattern.search("71505861234567")
        assert not pattern.search("3150586123456a")


def test_exported_request_schema_forbids_additional_properties(tmp_path: Path) -> None:
    (path,) = export_json_schemas([ResidenceRegistrationRequest], tmp_path)
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["pinfl"]


def test_exported_response_schema_describes_nested_models(tmp_path: Path) -> None:
    (path,) = export_json_schemas([ResidenceRegistration], tmp_path)
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["properties"]["address"] == {"$ref": "#/$defs/Address"}
    assert schema["$defs"]["Address"]["additionalProperties"] is False
    assert schema["properties"]["kind"]["enum"] == ["permanent", "temporary"]


def test_export_is_utf8_and_overwrites(tmp_path: Path) -> None:
    class Greeting(SharedResponse):
        """Salom, dunyo — ўзбекча."""

        text: str

    (path,) = export_json_schemas([Greeting], tmp_path)
    path.write_text("stale")
    (again,) = export_json_schemas([Greeting], tmp_path)
    assert again == path
    text = path.read_bytes().decode("utf-8")
    assert "ўзбекча" in text  # written as UTF-8, not \\u-escaped
    assert json.loads(text)["description"] == "Salom, dunyo — ўзбекча."
