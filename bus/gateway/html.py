"""The few pieces every HTML page of a node shares: the page frame, its headers, tables.

Pages hold personal data or act for an official, so they are never cached, never framed, load
nothing from elsewhere and send no referrer (``HEADERS``). Every value put in a page goes
through ``html.escape`` by the caller; ``table`` escapes the row names only.
"""

from __future__ import annotations

import html
from typing import Any

from starlette.responses import Response

__all__ = ["HEADERS", "flatten", "page", "table"]

HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_STYLE = (
    "body{font-family:sans-serif;max-width:52em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse}td,th{text-align:left;padding:.25em .8em;"
    "border-bottom:1px solid #ddd;vertical-align:top}.ok{color:#176f2c}.bad{color:#b00020}"
    ".gone{color:#555}"
    "code{font-size:.9em;word-break:break-all}label{display:block;margin-top:.6em}"
    "input,select,textarea{font:inherit;width:100%;box-sizing:border-box}"
    "textarea{min-height:6em;font-family:monospace}button{margin-top:1em;font:inherit}"
)


def page(title: str, body: str, status_code: int = 200,
         headers: dict[str, str] | None = None, lang: str = "en") -> Response:
    text = (
        f'<!doctype html><html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return Response(text, status_code, headers={**HEADERS, **(headers or {})},
                    media_type="text/html; charset=utf-8")


def table(rows: list[tuple[str, str]]) -> str:
    """Rows of (name, HTML already escaped)."""
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A nested JSON value as (dotted path, text) rows."""
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in flatten(v, f"{prefix}{k}.")]
    if isinstance(value, list):
        if not value:
            return [(prefix.rstrip("."), "—")]
        return [r for i, v in enumerate(value, 1) for r in flatten(v, f"{prefix}{i}.")]
    return [(prefix.rstrip("."), "—" if value is None else str(value))]
