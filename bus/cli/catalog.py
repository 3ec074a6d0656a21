"""``run_bus.py catalog [SERVICE]``: the service catalogue, read from the configuration.

Without SERVICE, a table of every configured service: provider, title, how the answer comes,
purposes, and the version's deprecation. With SERVICE, that service's entry: descriptions in
the three languages, legal basis, versions, its request fields and the paths to ask it and to
fetch its WSDL and JSON Schemas on a node. The same data as ``GET /v1/catalog``
(``bus.gateway.catalog.build_catalog``); ``--json`` prints it as that JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from bus.cli.common import console, err_console, load_or_exit
from bus.gateway.catalog import CatalogEntry, build_catalog

__all__ = ["catalog_command"]


def _state(entry: CatalogEntry) -> str:
    if entry.deprecated_on is None:
        return "current"
    text = f"deprecated {entry.deprecated_on.isoformat()}"
    if entry.sunset_on is not None:
        text += f", withdrawn {entry.sunset_on.isoformat()}"
    return text


def _answer(entry: CatalogEntry) -> str:
    a = entry.answer
    who = "official" if a.answered_by == "official" else "system"
    return f"{a.mode}, {who}, {a.expected}"


def _show(entry: CatalogEntry) -> None:
    table = Table(title=entry.service, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("title", escape(entry.title or "—"))
    provider = entry.provider
    table.add_row("provider", escape(f"{provider.name or '—'} ({provider.code})"))
    if entry.description is not None:
        for lang in ("uz", "ru", "en"):
            table.add_row(f"description ({lang})", escape(getattr(entry.description, lang)))
    table.add_row("legal basis", escape(entry.legal_basis or "—"))
    table.add_row("purposes", escape(", ".join(entry.purposes) or "none yet"))
    table.add_row("answer", escape(_answer(entry)))
    table.add_row("state", escape(_state(entry)))
    table.add_row("versions", escape(", ".join(
        v.service + (" (deprecated)" if v.deprecated_on else "") for v in entry.versions
    )))
    if entry.successor is not None:
        table.add_row("successor", escape(entry.successor))
    required = set(entry.request_schema.get("required", []))
    properties = entry.request_schema.get("properties", {})
    fields = [f + ("" if f in required else "?") for f in properties]
    table.add_row("request fields", escape(", ".join(fields)))
    links = entry.links
    for name in ("endpoint", "wsdl", "request_schema", "response_schema", "openapi"):
        table.add_row(name.replace("_", " "), escape(getattr(links, name)))
    console.print(table)


def catalog_command(
    service: Annotated[
        str | None, typer.Argument(help="member/service/version; all services when left out")
    ] = None,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="YAML configuration file")
    ] = Path("config/bus.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="print the catalogue's JSON")] = False,
) -> None:
    """The service catalogue: every configured service, or one, as GET /v1/catalog shows it."""
    # keys and certificates are not needed to read the catalogue (check-config checks them)
    catalog = build_catalog(load_or_exit(config, check_references=False))
    entries = {e.service: e for e in catalog.services}
    if service is not None and service not in entries:
        err_console.print(
            f"[red]no service {escape(service)} in {escape(str(config))}[/red] "
            f"(configured: {escape(', '.join(entries)) or 'none'})",
            highlight=False,
        )
        raise typer.Exit(2)
    if as_json:
        value = entries[service] if service is not None else catalog
        typer.echo(orjson.dumps(value.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
        return
    if service is not None:
        _show(entries[service])
        return
    table = Table(title=f"{catalog.count} services")
    table.add_column("service", no_wrap=True)
    for column in ("provider", "title", "answer", "purposes"):
        table.add_column(column)
    table.add_column("state", no_wrap=True)
    for e in catalog.services:
        table.add_row(
            escape(e.service), escape(e.provider.name or e.provider.code), escape(e.title or ""),
            escape(_answer(e)), escape(", ".join(e.purposes)), escape(_state(e)),
        )
    console.print(table)
