"""An HTML form made from a shared schema's JSON Schema, and the submitted form read back.

The operator's task page (``bus.gateway.inbox``) asks for an answer in the service's response
schema; ``SchemaForm`` turns that pydantic model into fields a person can fill in without
knowing JSON:

* a date is a date input, a whole number or a decimal a number input, an enum (``Literal``) a
  select, a yes/no a select (blank: not given), any other text a text input;
* a nested object (``$ref``) is a ``fieldset`` with a ``legend``, its fields inside;
* a list of objects (``parents``, ``properties``) is a group per item; a list with at most
  three items shows them all, a longer one shows the items typed so far and one blank, and an
  "Add another" button (``ADD``, a plain submit: the pages run no script) shows one more;
  a group left blank is not part of the answer;
* anything the walk does not know (a free-form mapping, a union of objects) is a JSON box.

Every field is named by its dotted path in the answer (``child.full_name``,
``parents.0.role``), the same path pydantic's ``loc`` gives, so ``render`` puts each error under
its own field (``aria-invalid``, ``aria-describedby``) and lists them all at the top with links
to the fields. Labels come from the property names, hints from their descriptions; required
fields say so in the label. ``read`` turns the posted names back into the nested data to
validate (blank fields left out), with the JSON boxes that do not parse as errors.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel

from bus.gateway.html import label_of

__all__ = ["ADD", "SchemaForm", "Submitted"]

ADD = "add"  # the name of the "Add another" buttons; their value is the list's path
_SHOWN_WHOLE = 3  # lists with at most this many items show every item's group at once
_MISSING = object()


def _singular(label: str) -> str:
    if label.endswith("ies"):
        return label[:-3] + "y"
    return label[:-1] if label.endswith("s") and not label.endswith("ss") else label


def _field_id(path: str) -> str:
    return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", path)


@dataclass
class Submitted:
    """A form read back: the answer to validate, the JSON boxes that do not parse (field
    name → message), and where each list item of the answer was typed (``field``)."""

    data: dict[str, Any]
    broken: dict[str, str]
    fields: dict[str, str]  # answer path of a list item → its field name's path

    def field(self, loc: list[str] | tuple[str | int, ...]) -> str:
        """The field name of a pydantic error's ``loc`` (an item's index in the answer is
        not its group's in the form when a group above it was left blank)."""
        answer = path = ""
        for part in map(str, loc):
            answer = f"{answer}.{part}" if answer else part
            path = self.fields.get(answer, f"{path}.{part}" if path else part)
        return path


class SchemaForm:
    """The form of one pydantic model (``render``) and its submitted fields (``read``)."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.schema = model.model_json_schema()
        self._defs: dict[str, Any] = self.schema.get("$defs", {})

    # -- the schema, resolved ---------------------------------------------------------------------

    def _node(self, spec: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """(the schema of a property, whether it may be null), through ``$ref`` and
        ``anyOf: [X, null]``."""
        nullable = False
        options = [o for o in spec.get("anyOf", []) if o.get("type") != "null"]
        if "anyOf" in spec:
            nullable = len(options) < len(spec["anyOf"])
            numeric = [o for o in options if o.get("type") in ("number", "integer")]
            if len(options) == 1:
                spec = {**options[0], **{k: v for k, v in spec.items() if k != "anyOf"}}
            elif numeric:  # a Decimal: number or numeric text
                spec = {**numeric[0], "description": spec.get("description", "")}
        if "$ref" in spec:
            target = self._defs.get(spec["$ref"].split("/")[-1], {})
            spec = {**target, **{k: v for k, v in spec.items() if k != "$ref"}}
        return spec, nullable

    def _kind(self, spec: dict[str, Any]) -> str:
        if "enum" in spec:
            return "enum"
        kind = spec.get("type")
        if kind == "object" and "properties" in spec:
            return "object"
        if kind == "array":
            item, _ = self._node(spec.get("items", {}))
            inner = self._kind(item)
            return "list" if inner != "json" else "json"
        if kind in ("string", "integer", "number", "boolean"):
            return str(kind)
        return "json"

    # -- rendering --------------------------------------------------------------------------------

    def render(self, typed: Mapping[str, str], errors: Mapping[str, str],
               added: str = "") -> str:
        """The fields (HTML), filled with ``typed`` (posted names → text), each error of
        ``errors`` (dotted path → message) at its field; ``added``: the list given one more
        group. Errors of no field are listed in the summary only."""
        shown: dict[str, str] = {}  # path → field id, of every field rendered
        body = self._object(self.schema, "", typed, errors, added, shown)
        return self._summary(errors, shown) + body

    def _summary(self, errors: Mapping[str, str], shown: dict[str, str]) -> str:
        if not errors:
            return ""
        items = []
        for path, message in errors.items():
            where = label_of(path.split(".")[-1]) if path else "The answer"
            text = f"{html.escape(where)}: {html.escape(message)}"
            target = shown.get(path)
            items.append(f"<li><a href='#{target}'>{text}</a></li>" if target else
                         f"<li>{text}</li>")
        return ("<div class='summary' role='alert' tabindex='-1' id='errors'>"
                f"<h3>Please correct {len(errors)} field(s); nothing was sent</h3>"
                f"<ul>{''.join(items)}</ul></div>")

    def _object(self, spec: dict[str, Any], prefix: str, typed: Mapping[str, str],
                errors: Mapping[str, str], added: str, shown: dict[str, str]) -> str:
        required = set(spec.get("required", []))
        parts = []
        for name, raw in spec.get("properties", {}).items():
            path = f"{prefix}{name}"
            node, nullable = self._node(raw)
            parts.append(self._field(path, name, node, name in required and not nullable,
                                     typed, errors, added, shown))
        return "".join(parts)

    def _field(self, path: str, name: str, spec: dict[str, Any], required: bool,
               typed: Mapping[str, str], errors: Mapping[str, str], added: str,
               shown: dict[str, str]) -> str:
        kind, fid = self._kind(spec), _field_id(path)
        shown[path] = fid
        label = label_of(name) + (" (required)" if required else "")
        error = errors.get(path)
        if kind == "object":
            inner = self._object(spec, path + ".", typed, errors, added, shown)
            return self._fieldset(fid, label, spec, error, inner)
        if kind == "list":
            return self._list(path, name, spec, label, typed, errors, added, shown)
        hint = str(spec.get("description", ""))
        described = " ".join(x for x in (f"{fid}-hint" if hint else "",
                                         f"{fid}-error" if error else "") if x)
        attributes = f"id='{fid}' name='{html.escape(path)}'"
        if described:
            attributes += f" aria-describedby='{described}'"
        if error:
            attributes += " aria-invalid='true'"
        if required:
            attributes += " aria-required='true'"
        value = typed.get(path, "")
        parts = [f"<label for='{fid}'>{html.escape(label)}"]
        if hint:
            parts.append(f"<span class='hint' id='{fid}-hint'>{html.escape(hint)}</span>")
        parts.append("</label>")
        if error:
            parts.append(f"<p class='error' id='{fid}-error'>{html.escape(error)}</p>")
        parts.append(self._widget(kind, spec, attributes, value))
        return "".join(parts)

    def _widget(self, kind: str, spec: dict[str, Any], attributes: str, value: str) -> str:
        if kind in ("enum", "boolean"):
            choices = ([(str(v), str(v)) for v in spec["enum"]] if kind == "enum"
                       else [("true", "yes"), ("false", "no")])
            options = "".join(
                f"<option value='{html.escape(v)}'{' selected' if v == value else ''}>"
                f"{html.escape(text)}</option>" for v, text in choices)
            return (f"<select {attributes}><option value=''>— choose —</option>"
                    f"{options}</select>")
        if kind == "json":
            shape = value or orjson.dumps(self._shape(spec), option=orjson.OPT_INDENT_2).decode()
            rows = min(shape.count("\n") + 2, 16)
            return f"<textarea {attributes} rows='{rows}'>{html.escape(shape)}</textarea>"
        if kind == "string" and spec.get("format") == "date":
            widget = "type='date'"
        elif kind == "integer":
            widget = "type='number' step='1' inputmode='numeric'"
        elif kind == "number":
            widget = "type='text' inputmode='decimal'"
        else:
            widget = "type='text'"
            if spec.get("maxLength"):
                widget += f" maxlength='{int(spec['maxLength'])}'"
        return f"<input {widget} {attributes} value='{html.escape(value)}'>"

    def _fieldset(self, fid: str, label: str, spec: dict[str, Any], error: str | None,
                  inner: str) -> str:
        hint = spec.get("description", "") if "properties" not in spec else ""
        parts = [f"<fieldset id='{fid}'><legend>{html.escape(label)}</legend>"]
        if hint:
            parts.append(f"<p class='hint'>{html.escape(str(hint))}</p>")
        if error:
            parts.append(f"<p class='error'>{html.escape(error)}</p>")
        parts.append(inner)
        parts.append("</fieldset>")
        return "".join(parts)

    def _list(self, path: str, name: str, spec: dict[str, Any], label: str,
              typed: Mapping[str, str], errors: Mapping[str, str], added: str,
              shown: dict[str, str]) -> str:
        item, _ = self._node(spec.get("items", {}))
        most = spec.get("maxItems")
        used = {int(m.group(1)) for key in typed
                if (m := re.match(rf"^{re.escape(path)}\.([0-9]+)(\.|$)", key))}
        count = max(used) + 1 if used else 0
        if most is not None and most <= _SHOWN_WHOLE:
            count = most
        else:
            count += 1 if not used or added == path else 0
            count = max(count, int(spec.get("minItems", 0)), 1)
            if most is not None:
                count = min(count, most)
        one = _singular(label_of(name))
        groups = []
        for i in range(count):
            where = f"{path}.{i}"
            legend = f"{one} {i + 1}"
            if self._kind(item) == "object":
                inner = self._object(item, where + ".", typed, errors, added, shown)
                shown[where] = _field_id(where)
                groups.append(self._fieldset(_field_id(where), legend, item,
                                             errors.get(where), inner))
            else:
                groups.append(self._field(where, f"{one} {i + 1}", item, False, typed,
                                          errors, added, shown))
        hint = "Leave a group blank to leave it out."
        more = ""
        if most is None or count < most:
            more = (f"<button type='submit' class='secondary' name='{ADD}' "
                    f"value='{html.escape(path)}' formnovalidate>Add another "
                    f"{html.escape(one.lower())}</button>")
        fid = _field_id(path)
        error = errors.get(path)
        return self._fieldset(fid, label, {"description": hint}, error, "".join(groups) + more)

    def _shape(self, spec: dict[str, Any]) -> Any:
        """An empty shape of a property the form has no widget for, to fill in as JSON."""
        node, _ = self._node(spec)
        kind = node.get("type")
        if kind == "array":
            return [self._shape(node.get("items", {}))]
        if kind == "object" or "properties" in node:
            return {k: self._shape(v) for k, v in node.get("properties", {}).items()}
        return "" if kind == "string" else None

    def explain(self, loc: list[str] | tuple[str | int, ...], kind: str, message: str) -> str:
        """A validation error of ``loc`` as an official reads it: what to do, with the
        field's own description when its form is wrong."""
        spec: dict[str, Any] = self.schema
        for part in map(str, loc):
            spec, _ = self._node(spec)
            if part.isdigit() and "items" in spec:
                spec = spec["items"]
            else:
                spec = spec.get("properties", {}).get(part, {})
        described = str(self._node(spec)[0].get("description", ""))
        if kind == "missing":
            return "Fill this in."
        if kind == "string_pattern_mismatch":
            return "This is not in the expected form" + (f": {described}." if described else ".")
        return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")

    # -- reading ----------------------------------------------------------------------------------

    def read(self, form: Mapping[str, str]) -> Submitted:
        """The answer to validate, from the posted fields (names are dotted paths)."""
        done = Submitted({}, {}, {})
        data = self._read_object(self.schema, "", "", form, done)
        done.data = data if isinstance(data, dict) else {}
        return done

    def _read_object(self, spec: dict[str, Any], at: str, prefix: str,
                     form: Mapping[str, str], done: Submitted) -> Any:
        out = {}
        for name, raw in spec.get("properties", {}).items():
            value = self._read(f"{at}{name}", f"{prefix}{name}", self._node(raw)[0], form, done)
            if value is not _MISSING:
                out[name] = value
        return out if out else _MISSING

    def _read(self, at: str, path: str, spec: dict[str, Any], form: Mapping[str, str],
              done: Submitted) -> Any:
        """``at``: where the value goes in the answer; ``path``: its field's name."""
        kind = self._kind(spec)
        if kind == "object":
            return self._read_object(spec, at + ".", path + ".", form, done)
        if kind == "list":
            item, _ = self._node(spec.get("items", {}))
            indices = sorted({int(m.group(1)) for key in form
                              if (m := re.match(rf"^{re.escape(path)}\.([0-9]+)(\.|$)", key))})
            items: list[Any] = []
            for i in indices:  # blank groups are left out: the answer's index is not the form's
                value = self._read(f"{at}.{len(items)}", f"{path}.{i}", item, form, done)
                if value is not _MISSING:
                    done.fields[f"{at}.{len(items)}"] = f"{path}.{i}"
                    items.append(value)
            return items
        text = form.get(path, "").strip()
        if not text:
            return _MISSING
        if kind == "json":
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                done.broken[path] = f"not JSON: {exc}"
                return _MISSING
        if kind == "boolean":
            return text == "true"
        return text  # pydantic reads "2020-01-02" as a date, "3" as 3
