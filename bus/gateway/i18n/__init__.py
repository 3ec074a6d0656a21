"""The languages of what a person reads: pages and problem titles in Uzbek, Russian, English.

``language(asked, accept_language, default)`` is the one choice every page and problem makes:
``?lang=`` when it names one of ours (``uz``: Uzbek in Latin script, ``ru``, ``en``), else the
best of ours in ``Accept-Language`` by q-value (``uz-Latn-UZ`` counts as ``uz``; ``q=0`` refuses
a language), else the node's ``node.language``. ``Lang`` carries the choice through a page: its
texts (``Lang.t``, from ``bus.gateway.i18n.texts``), the headers of a page in it
(``Content-Language``, ``Vary: Accept-Language``), the switcher (``uz · ru · en`` links) and
the query that keeps an explicit ``?lang=`` on the page's own links and forms.

The texts are a Python table, not gettext catalogues: ``pip install -e .`` installs them with no
compile step, a test checks every text has all three languages with the same placeholders, and
the English problem titles stay the error classes' own (``bus.core.errors``), which the SOAP
faults and the logs use too; ``problem_titles`` holds their Uzbek and Russian.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import get_args
from urllib.parse import parse_qs

from bus.config.settings import Language
from bus.gateway.i18n.problem_titles import PROBLEM_TITLES
from bus.gateway.i18n.texts import TEXTS

__all__ = [
    "LANGUAGES",
    "Lang",
    "choose",
    "from_scope",
    "language",
    "problem_title",
    "text",
]

LANGUAGES: tuple[str, ...] = get_args(Language)
NAMES = {"uz": "O‘zbekcha", "ru": "Русский", "en": "English"}


def language(asked: str | None, accept_language: str, default: str = "en") -> str:
    """``asked`` if it is one of ours, else the best of ours in ``Accept-Language`` (by
    q-value, then by order), else ``default``."""
    if asked in LANGUAGES:
        return asked
    ranked = []
    for i, part in enumerate(accept_language.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            ranked.append((-q, i, tag.strip().lower().split("-")[0]))
    for _, _, tag in sorted(ranked):
        if tag in LANGUAGES:
            return tag
    return default


def text(lang: str, key: str, **params: object) -> str:
    """The text ``key`` in ``lang`` (plain text, not escaped), its placeholders filled."""
    return TEXTS[key][lang].format(**params)


def problem_title(code: str, lang: str, english: str) -> str:
    """A problem's title in ``lang``; ``english`` (the error class's) for English or a code
    with no translation."""
    return PROBLEM_TITLES.get(code, {}).get(lang, english) if lang != "en" else english


@dataclass(frozen=True)
class Lang:
    """The language of one page: ``code``, and whether the request named it (``?lang=``), in
    which case the page's own links and forms keep it."""

    code: str
    asked: bool = False

    def t(self, key: str, **params: object) -> str:
        """The text ``key``, escaped for HTML (params are escaped as they are filled in)."""
        escaped = {k: html.escape(str(v)) for k, v in params.items()}
        return html.escape(TEXTS[key][self.code]).format(**escaped)

    def plain(self, key: str, **params: object) -> str:
        """The text ``key`` as plain text (a page's ``<title>``, which ``page`` escapes)."""
        return text(self.code, key, **params)

    @property
    def query(self) -> str:
        """``?lang=ru`` when the language was asked for, else empty: for the page's links."""
        return f"?lang={self.code}" if self.asked else ""

    def link(self, path: str) -> str:
        """``path`` (which may have a query already) keeping an asked language."""
        if not self.asked:
            return path
        return f"{path}{'&' if '?' in path else '?'}lang={self.code}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Language": self.code, "Vary": "Accept-Language"}

    def switcher(self) -> str:
        """Links to this page in each language (the current one marked), as HTML."""
        return "<span class='langs'>" + " | ".join(
            f"<strong aria-current='true' lang='{x}'>{x}</strong>" if x == self.code
            else f"<a href='?lang={x}' lang='{x}' hreflang='{x}' "
                 f"title='{html.escape(NAMES[x])}'>{x}</a>"
            for x in LANGUAGES
        ) + "</span>"


def choose(query: Mapping[str, str], headers: Mapping[str, str], default: str) -> Lang:
    """The language of a request from its query parameters and headers."""
    asked = query.get("lang")
    chosen = language(asked, headers.get("accept-language", ""), default)
    return Lang(chosen, asked=asked == chosen)


def from_scope(scope: Mapping[str, object], default: str) -> str:
    """The language of an ASGI request (for what has no ``Request``, such as a middleware)."""
    raw = scope.get("query_string", b"")
    query = parse_qs(raw.decode("latin-1")) if isinstance(raw, bytes) and raw else {}
    asked = query["lang"][-1] if query.get("lang") else None
    accept = ""
    for name, value in scope.get("headers", ()) or ():  # type: ignore[attr-defined]
        if name == b"accept-language":
            accept = value.decode("latin-1")
            break
    return language(asked, accept, default)
