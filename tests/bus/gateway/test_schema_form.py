"""The answer form made from a shared schema: widgets per type, groups per list item, the
posted fields read back into the answer, and errors put under the fields typed."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from bus.gateway.schema_form import ADD, SchemaForm
from demo.data import ARCHIVE_BIRTHS, birth_certificate
from schemas.civil import BirthCertificate
from schemas.property import PropertyOwnership


class Odd(BaseModel):
    """What the form draws no widget for goes in a JSON box; yes/no is a select."""

    extra: dict[str, int]
    urgent: bool | None = None
    count: int = 0


def widget(html: str, name: str) -> str:
    found = re.search(rf"<(input|select|textarea)[^>]* name='{re.escape(name)}'[^>]*>", html)
    assert found, f"no field {name}"
    return found.group(0)


def test_each_type_gets_its_widget() -> None:
    html = SchemaForm(BirthCertificate).render({}, {})
    assert "type='date'" in widget(html, "child.born_on")
    assert widget(html, "child.sex").startswith("<select")
    assert "<option value='female'>female</option>" in html
    assert "type='text'" in widget(html, "number")
    assert "aria-describedby='f-number-hint'" in widget(html, "number")  # its description
    assert "<legend>Child (required)</legend>" in html
    assert "<label for='f-child-pinfl'>PINFL (required)" in html
    # the parent's PINFL may be null: not required
    assert "<label for='f-parents-0-pinfl'>PINFL<span" in html
    # two parents at most: both groups shown, no "Add another"
    assert "<legend>Parent 2</legend>" in html and f"name='{ADD}'" not in html
    odd = SchemaForm(Odd).render({}, {})
    assert widget(odd, "extra").startswith("<textarea") and widget(odd, "urgent").startswith(
        "<select")
    assert "type='number' step='1'" in widget(odd, "count")


def test_a_list_without_a_limit_grows_one_group_at_a_time() -> None:
    form = SchemaForm(PropertyOwnership)
    first = form.render({}, {})
    assert "<legend>Property 1</legend>" in first and "Property 2" not in first
    assert f"name='{ADD}' value='properties'" in first
    assert "inputmode='decimal'" in widget(first, "properties.0.area_m2")  # a Decimal
    assert widget(first, "properties.0.kind").startswith("<select")
    typed = {"properties.0.address": "Toshkent", "properties.0.kind": "house"}
    more = form.render(typed, {}, added="properties")
    assert "<legend>Property 2</legend>" in more and "Property 3" not in more
    assert "value='Toshkent'" in widget(more, "properties.0.address")  # kept as typed
    assert "value='house' selected" in more


def test_the_posted_fields_are_the_answer() -> None:
    record = birth_certificate(ARCHIVE_BIRTHS[0]).model_dump(mode="json")
    posted = {"csrf": "x", "number": record["number"], "registered_on": record["registered_on"],
              "registry_office": record["registry_office"],
              **{f"child.{k}": v for k, v in record["child"].items()},
              **{f"parents.{i}.{k}": v or "" for i, p in enumerate(record["parents"])
                 for k, v in p.items()}}
    submitted = SchemaForm(BirthCertificate).read(posted)
    assert submitted.broken == {}
    assert BirthCertificate.model_validate(submitted.data).model_dump(mode="json") == record


def test_a_blank_group_is_left_out_and_errors_land_on_the_group_typed() -> None:
    form = SchemaForm(BirthCertificate)
    submitted = form.read({"parents.0.role": "", "parents.0.full_name": "",
                           "parents.1.role": "grandmother", "parents.1.full_name": "Gulnora"})
    assert submitted.data["parents"] == [{"role": "grandmother", "full_name": "Gulnora"}]
    with pytest.raises(ValidationError) as caught:
        BirthCertificate.model_validate(submitted.data)
    where = {submitted.field(e["loc"]): form.explain(e["loc"], e["type"], e["msg"])
             for e in caught.value.errors()}
    assert where["parents.1.role"].startswith("Input should be 'mother' or 'father'")
    assert where["number"] == "Fill this in."
    html = form.render({"parents.1.role": "grandmother"}, where)
    error = re.search(r"<p class='error' id='f-parents-1-role-error'>([^<]+)</p>", html)
    assert error and "mother" in error.group(1)
    assert "aria-invalid='true'" in widget(html, "parents.1.role")
    assert "<a href='#f-parents-1-role'>" in html  # the summary links to the field


def test_a_wrong_form_says_what_is_expected() -> None:
    form = SchemaForm(BirthCertificate)
    message = form.explain(("number",), "string_pattern_mismatch", "String should match …")
    assert message == ("This is not in the expected form: series and number of the "
                       "certificate, e.g. I-TN 0451207.")


def test_a_json_box_that_does_not_parse_is_an_error_of_its_field() -> None:
    submitted = SchemaForm(Odd).read({"extra": "{not json", "urgent": "true", "count": "3"})
    assert list(submitted.broken) == ["extra"] and "not JSON" in submitted.broken["extra"]
    assert submitted.data == {"urgent": True, "count": "3"}
    good: dict[str, Any] = SchemaForm(Odd).read({"extra": '{"a": 1}'}).data
    assert Odd.model_validate(good).extra == {"a": 1}


def test_what_was_typed_is_shown_as_text_not_markup() -> None:
    html = SchemaForm(BirthCertificate).render({"number": "'><script>x</script>"}, {
        "number": "<b>bad</b>"})
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>bad" not in html


def test_a_decimal_keeps_its_digits() -> None:
    posted = {"pinfl": ARCHIVE_BIRTHS[0].pinfl, "properties.0.cadastral_number":
              "10:01:02:03:04:0005", "properties.0.kind": "apartment",
              "properties.0.address": "Toshkent", "properties.0.area_m2": "72.50",
              "properties.0.share": "1/2", "properties.0.registered_on": "2015-04-02"}
    data = SchemaForm(PropertyOwnership).read(posted).data
    assert PropertyOwnership.model_validate(data).properties[0].area_m2 == Decimal("72.50")
