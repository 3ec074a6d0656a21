"""``GET /catalog``: the service catalogue as a page a new agency's developer reads.

One section per service version (``bus.gateway.catalog.build_catalog``): what it gives, in the
language asked (``bus.gateway.i18n``: ``?lang=uz|ru|en``, else the best of those in
``Accept-Language``, else the node's ``node.language``), its provider, legal basis, purposes,
whether it answers at once or later, its versions and their deprecation, the fields of its
request and answer, and the links to ask it (HTTP and SOAP), its WSDL and JSON Schemas.
No token needed, like ``/v1/catalog``.
"""
# No "from __future__ import annotations": FastAPI reads the endpoint annotations.

import html
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from bus.config.settings import BusSettings
from bus.gateway.catalog import CATALOG_PATH, CatalogEntry, build_catalog
from bus.gateway.html import page, table
from bus.gateway.i18n import choose

__all__ = ["CATALOG_PAGE", "catalog_page_routes"]

CATALOG_PAGE = "/catalog"


def _fields(schema: dict[str, Any]) -> str:
    """The top-level fields of a JSON Schema as a table: name, type, required, description."""
    required = set(schema.get("required", []))
    rows = []
    for name, spec in schema.get("properties", {}).items():
        kind = spec.get("type") or spec.get("format") or ", ".join(
            str(o.get("type") or o.get("$ref", "").rsplit("/", 1)[-1])
            for o in spec.get("anyOf", spec.get("allOf", []))
        ) or spec.get("$ref", "").rsplit("/", 1)[-1]
        rows.append(
            f"<tr><td><code>{html.escape(name)}</code></td><td>{html.escape(str(kind))}</td>"
            f"<td>{'yes' if name in required else ''}</td>"
            f"<td>{html.escape(str(spec.get('description') or spec.get('title') or ''))}</td></tr>"
        )
    head = "<tr><th>field</th><th>type</th><th>required</th><th>meaning</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _link(href: str, text: str | None = None) -> str:
    return f'<a href="{html.escape(href)}"><code>{html.escape(text or href)}</code></a>'


def _section(entry: CatalogEntry, lang: str) -> str:
    e = html.escape
    text = getattr(entry.description, lang) if entry.description is not None else None
    answer = entry.answer
    how = (
        "at once, in the response" if answer.mode == "sync"
        else "later: ask with <code>?mode=async</code>, poll the <code>Location</code> or "
        "give <code>X-Bus-Callback</code>"
    )
    who = "an official" if answer.answered_by == "official" else "the agency's system"
    versions = ", ".join(
        e(v.version)
        + (f" (deprecated on {v.deprecated_on.isoformat()}" if v.deprecated_on else "")
        + (f", withdrawn on {v.sunset_on.isoformat()}" if v.sunset_on else "")
        + (")" if v.deprecated_on else "")
        for v in entry.versions
    )
    links = entry.links
    rows = [
        ("service", f"<code>{e(entry.service)}</code>"),
        ("provider", f"{e(entry.provider.name or '')} (<code>{e(entry.provider.code)}</code>)"),
        ("legal basis", e(entry.legal_basis or "—")),
        ("purposes", ", ".join(f"<code>{e(p)}</code>" for p in entry.purposes) or "none yet"),
        ("answered", f"{how}; by {who}, {e(answer.expected)}"),
        ("versions", versions),
        ("ask (JSON)", f"POST {_link(links.endpoint)}"),
        ("ask (SOAP)", f"POST {_link(links.soap)} — WSDL {_link(links.wsdl)}"),
        ("schemas", f"{_link(links.request_schema, 'request')} · "
                    f"{_link(links.response_schema, 'response')} · "
                    f"{_link(links.openapi, 'OpenAPI operation')} · {_link(links.self, 'JSON')}"),
    ]
    warning = ""
    if entry.deprecated_on is not None:
        warning = (
            f'<p class="bad">Deprecated on {entry.deprecated_on.isoformat()}'
            + (f", withdrawn on {entry.sunset_on.isoformat()}" if entry.sunset_on else "")
            + (f": use <code>{e(entry.successor)}</code>" if entry.successor else "")
            + ".</p>"
        )
    return (
        f'<section id="{e(entry.service)}"><h2>{e(entry.title or entry.service)}</h2>'
        f"{warning}<p>{e(text or '')}</p>{table(rows)}"
        f"<h3>Request</h3>{_fields(entry.request_schema)}"
        f"<h3>Answer</h3>{_fields(entry.response_schema)}</section>"
    )


def catalog_page_routes(settings: BusSettings) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    catalog = build_catalog(settings)

    @router.get(CATALOG_PAGE)
    async def catalog_page(request: Request) -> Response:
        lang = choose(request.query_params, request.headers, settings.node.language)
        chosen = lang.code
        contents = "".join(
            f'<li><a href="#{html.escape(s.service)}">{html.escape(s.service)}</a> — '
            f"{html.escape(s.title or '')}</li>"
            for s in catalog.services
        )
        intro = (
            "<h1>Service catalogue</h1>"
            f"<p>{catalog.count} services of the interagency bus. To ask one, your agency needs "
            "an API token from the bus operator and an access right naming the service and "
            "the purpose; every request carries <code>Authorization: Bearer …</code>, "
            "<code>X-Bus-Purpose</code> and <code>X-Bus-User</code>. The same catalogue as "
            f"JSON: {_link(CATALOG_PATH)} (its schema: {_link(CATALOG_PATH + '.schema.json')});"
            f" every route: {_link('/openapi.json')}.</p><ul>{contents}</ul>"
        )
        body = intro + "".join(_section(s, chosen) for s in catalog.services)
        return page("Service catalogue", body, lang=lang)

    return router
