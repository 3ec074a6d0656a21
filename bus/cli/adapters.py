"""``run_bus.py adapters [KIND]``: the adapter kinds installed, with their options.

Lists every kind the node could build (``adapters.available_kinds``: the built-in ones and the
plugins of the ``bus.adapters`` entry-point group), where it comes from, the first line of its
module docstring and its options — read from the kind's ``options_model`` JSON Schema (name,
type, default or "required") and described by the model or else by the docstring's "Options"
block. ``KIND`` prints that kind's whole module
docstring (what it talks to, its options, its error mapping) after its options. A plugin that
cannot be loaded is reported and the command exits 1.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from adapters import AdapterConfigError, AdapterKind, available_kinds

__all__ = ["OptionInfo", "adapters_command", "option_infos"]

console = Console(width=None if sys.stdout.isatty() else 200, highlight=False)

OptionInfo = tuple[str, str, str, str]  # name, type, default ("required" if none), description


def _type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return _type(defs.get(name, {}), defs) if name in defs else name
    if "anyOf" in schema:
        parts = [_type(s, defs) for s in schema["anyOf"]]
        return " | ".join(dict.fromkeys(parts))
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    kind = schema.get("type")
    if kind == "array":
        return f"list[{_type(schema.get('items', {}), defs)}]"
    if kind == "object":
        values = schema.get("additionalProperties")
        if isinstance(values, dict):
            return f"{{str: {_type(values, defs)}}}"
        return str(schema.get("title", "object"))
    names = {"string": "str", "integer": "int", "number": "float", "boolean": "bool",
             "null": "none"}
    return names.get(str(kind), str(kind or "any"))


def documented_options(doc: str) -> dict[str, str]:
    """What the module docstring's "Options" block says of each option (its text after the
    name and type columns, continuation lines joined)."""
    out: dict[str, str] = {}
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Options")), None)
    if start is None:
        return out
    current = None
    for line in lines[start + 1:]:
        if not line.strip():
            if current is not None:
                break  # the block ends at the first blank line after its entries
            continue
        entry = re.match(r"^ {4}([A-Za-z_]\w*)\s{2,}(.*)$", line)
        if entry:
            current = entry.group(1)
            parts = re.split(r"\s{2,}", entry.group(2).strip(), maxsplit=1)
            out[current] = parts[1] if len(parts) == 2 else parts[0]
        elif current is not None and line.startswith(" " * 6):
            out[current] += " " + line.strip()
        else:
            break
    return out


def option_infos(kind: AdapterKind) -> list[OptionInfo]:
    """One row per option of ``kind``: name, type and default from its options model's JSON
    Schema, the description from the model or else from the module docstring."""
    schema = kind.options_model.model_json_schema()
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    documented = documented_options(kind.doc)
    rows = []
    for name, prop in schema.get("properties", {}).items():
        default = "required" if name in required else json.dumps(prop.get("default"))
        description = str(prop.get("description") or documented.get(name, ""))
        rows.append((name, _type(prop, defs), default, description))
    return rows


def _summary(kind: AdapterKind) -> str:
    doc = kind.doc
    return doc.splitlines()[0] if doc else ""


def adapters_command(
    kind: Annotated[
        str | None, typer.Argument(help="show this kind's whole documentation")
    ] = None,
) -> None:
    """List the installed adapter kinds (built-in and plugins) with their options."""
    try:
        kinds = available_kinds()
    except AdapterConfigError as exc:
        console.print(f"[red]{exc}[/red]", markup=True)
        raise typer.Exit(1) from None
    if kind is not None:
        if kind not in kinds:
            console.print(f"no adapter kind {kind!r}; installed: {', '.join(sorted(kinds))}")
            raise typer.Exit(1)
        kinds = {kind: kinds[kind]}
    for name in sorted(kinds):
        found = kinds[name]
        table = Table(
            title=f"{name}  ({found.source}: {found.cls.__module__}:{found.cls.__name__})",
            title_justify="left",
            caption=_summary(found),
            caption_justify="left",
        )
        for column in ("option", "type", "default", "description"):
            table.add_column(column, overflow="fold")
        for row in option_infos(found):
            table.add_row(*row)
        console.print(table)
        if kind is not None:
            console.print(found.doc, markup=False)
