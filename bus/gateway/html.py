"""The few pieces every HTML page of a node shares: the page frame, its headers, tables, times.

Pages hold personal data or act for an official, so they are never cached, never framed, load
nothing from elsewhere and send no referrer to another site (``HEADERS``; not ``no-referrer``,
under which a browser sends ``Origin: null`` with the page's own forms, and the inbox refuses
forms from another origin). Every value put in a page goes
through ``html.escape`` by the caller; ``table`` escapes the row names only.

The frame (``page``) is made for people on any screen and with any means: a skip link, the
landmarks a screen reader lists (``header`` with the page's ``nav``, ``main``), one ``h1`` per
page from the caller, a viewport for phones and CSS that lets nothing run wider than a 390 px
screen (tables fold into label/value lines on narrow screens), and a visible focus ring for
keyboard users. Times are shown in the node's time zone (``node.time_zone``) by ``when``.
"""

from __future__ import annotations

import datetime as dt
import html
import zoneinfo
from typing import Any

from starlette.responses import Response

from bus.gateway.i18n import Lang

__all__ = ["HEADERS", "flatten", "label_of", "page", "table", "utc_offset", "when"]

HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
_STYLE = (
    "*{box-sizing:border-box}"
    "body{font-family:system-ui,sans-serif;line-height:1.45;margin:0;color:#1d1d1d}"
    ".skip{position:absolute;left:-999em}.skip:focus{left:1em;top:.5em;background:#fff;"
    "padding:.4em;z-index:1}.sr{position:absolute;left:-999em;width:1px;overflow:hidden}"
    "header{background:#0b3d62;color:#fff;padding:.6em 1em}"
    "header .inner,main{max-width:56em;margin:0 auto}"
    "header .site{font-weight:600;margin:0}header a{color:#fff}"
    "header nav{margin-top:.3em;display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:center}"
    "header nav form{display:inline;margin:0}"
    "header nav button{margin:0;padding:.2em .8em;background:#fff;color:#0b3d62}"
    "main{padding:0 1em 2em}h1{font-size:1.6em;margin:.6em 0 .4em;overflow-wrap:anywhere}"
    "h2{font-size:1.25em;margin-top:1.4em}"
    "table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.35em .6em;"
    "border-bottom:1px solid #ddd;vertical-align:top;overflow-wrap:break-word}"
    "time{white-space:nowrap}"
    "th{font-weight:600}"
    ".ok{color:#176f2c}.bad{color:#b00020}.gone{color:#555}"
    ".note{border-left:.3em solid;padding:.4em .8em;background:#f6f6f6}"
    "code{font-size:.9em;word-break:break-all}"
    "label{display:block;margin-top:.8em;font-weight:600}"
    ".hint{display:block;font-weight:400;color:#555;font-size:.9em}"
    "input,select,textarea{font:inherit;width:100%;padding:.35em;border:1px solid #767676;"
    "border-radius:3px}input[type=checkbox]{width:auto}"
    "textarea{min-height:6em;font-family:monospace}"
    "fieldset{border:1px solid #ccc;border-radius:4px;margin:1em 0;padding:.4em 1em 1em;"
    "min-width:0}legend{font-weight:600;padding:0 .3em}"
    "[aria-invalid=true]{border:2px solid #b00020}"
    ".error{color:#b00020;font-weight:600;margin:.2em 0}"
    ".summary{border:3px solid #b00020;padding:.2em 1em;margin:1em 0}"
    "button{margin-top:1em;font:inherit;padding:.45em 1.1em;border-radius:3px;"
    "border:1px solid #0b3d62;background:#0b3d62;color:#fff;cursor:pointer}"
    "button.secondary{background:#fff;color:#0b3d62}"
    ":focus-visible{outline:3px solid #f9a800;outline-offset:2px}"
    "img{max-width:100%;height:auto}"
    "@media (max-width:40em){"
    "table,tbody,tr,th,td{display:block}tr{border-bottom:1px solid #ddd;padding:.3em 0}"
    "td,th{border:0;padding:.1em 0}"
    "table.list thead{position:absolute;left:-999em}"
    "table.list td[data-label]::before{content:attr(data-label) ': ';font-weight:600}}"
)


def page(title: str, body: str, status_code: int = 200,
         headers: dict[str, str] | None = None, *, nav: str = "",
         lang: Lang | None = None) -> Response:
    """A whole page: ``body`` (HTML, with its ``h1``) in ``main``; ``nav`` (HTML, the page's
    links and controls) in the header's ``nav`` landmark, after the language switcher;
    ``lang``: the page's language (``bus.gateway.i18n``; English when None), which also sets
    ``<html lang>``, ``Content-Language`` and ``Vary: Accept-Language``."""
    lang = lang or Lang("en")
    text = (
        f'<!doctype html><html lang="{lang.code}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f'<a class="skip" href="#main">{lang.t("frame.skip")}</a>'
        f'<header><div class="inner"><p class="site">{lang.t("frame.site")}</p>'
        f'<nav aria-label="Page">{nav}'
        f'<span class="sr">{lang.t("frame.languages")}: </span>{lang.switcher()}</nav>'
        "</div></header>"
        f'<main id="main" tabindex="-1">{body}</main></body></html>'
    )
    return Response(text, status_code, headers={**HEADERS, **lang.headers, **(headers or {})},
                    media_type="text/html; charset=utf-8")


def table(rows: list[tuple[str, str]], caption: str = "") -> str:
    """Rows of (name, HTML already escaped)."""
    cells = "".join(f'<tr><th scope="row">{html.escape(k)}</th><td>{v}</td></tr>'
                    for k, v in rows)
    head = f"<caption class='sr'>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{head}{cells}</table>"


def when(moment: dt.datetime | float | str, zone: str, *, offset: bool = True) -> str:
    """A moment (aware datetime, Unix time or ISO 8601 text) as HTML: the date and time in
    the node's time zone ``zone`` (with its UTC offset, unless the page says the zone once),
    and the exact instant for machines."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    elif isinstance(moment, int | float):
        moment = dt.datetime.fromtimestamp(moment, dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    local = moment.astimezone(zoneinfo.ZoneInfo(zone))
    shift = utc_offset(local)
    instant = moment.astimezone(dt.UTC).isoformat(timespec="seconds")
    shown = f"{local:%Y-%m-%d %H:%M}" + (f" ({shift})" if offset else "")
    return f'<time datetime="{instant}">{shown}</time>'


_ACRONYMS = {"pinfl": "PINFL", "stir": "STIR", "id": "ID", "url": "URL", "m2": "m²"}


def label_of(name: str) -> str:
    """A field's name as a person reads it: ``registered_on`` → ``Registered on``, ``pinfl``
    → ``PINFL``; a dotted path part by part, joined with a right angle quote."""
    if "." in name:
        return " \u203a ".join(label_of(part) for part in name.split("."))
    words = [_ACRONYMS.get(w, w) for w in name.split("_")]
    first = words[0] if words[0].isupper() else words[0].capitalize()
    return " ".join([first, *words[1:]])


def utc_offset(local: dt.datetime) -> str:
    """``UTC+05:00`` (``UTC`` for no offset) of an aware datetime."""
    shift = local.strftime("%z")
    return "UTC" if shift in ("+0000", "") else f"UTC{shift[:3]}:{shift[3:]}"


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A nested JSON value as (dotted path, text) rows."""
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in flatten(v, f"{prefix}{k}.")]
    if isinstance(value, list):
        if not value:
            return [(prefix.rstrip("."), "—")]
        return [r for i, v in enumerate(value, 1) for r in flatten(v, f"{prefix}{i}.")]
    return [(prefix.rstrip("."), "—" if value is None else str(value))]
