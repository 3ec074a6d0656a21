"""The texts people read: every one in Uzbek, Russian and English with the same placeholders; every
problem code titled in each; the one language choice (``?lang=``, Accept-Language, default)."""

from __future__ import annotations

import string
from collections.abc import Iterator
from typing import get_args

import pytest

from bus.config.settings import Language
from bus.core.errors import BusError
from bus.gateway.html import page
from bus.gateway.i18n import LANGUAGES, Lang, choose, from_scope, language, problem_title
from bus.gateway.i18n.problem_titles import PROBLEM_TITLES
from bus.gateway.i18n.texts import TEXTS


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _error_classes(base: type[BusError] = BusError) -> Iterator[type[BusError]]:
    yield base
    for sub in base.__subclasses__():
        yield from _error_classes(sub)


def test_the_languages_are_the_settings_languages() -> None:
    assert LANGUAGES == get_args(Language) == ("uz", "ru", "en")


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_every_text_has_three_languages_with_the_same_placeholders(key: str) -> None:
    entry = TEXTS[key]
    assert set(entry) == set(LANGUAGES), key
    assert all(entry[x].strip() for x in LANGUAGES), key
    english = _placeholders(entry["en"])
    assert {x: _placeholders(entry[x]) for x in LANGUAGES} == dict.fromkeys(LANGUAGES, english)


def test_the_translations_are_not_english_left_in_place() -> None:
    same = [k for k, e in TEXTS.items() if e["uz"] == e["en"] or e["ru"] == e["en"]]
    assert same == []


def test_every_problem_code_has_an_uzbek_and_a_russian_title() -> None:
    codes = {c.code for c in _error_classes()}
    missing = sorted(c for c in codes if set(PROBLEM_TITLES.get(c, {})) != {"uz", "ru"})
    assert missing == []
    assert set(PROBLEM_TITLES) <= codes  # nothing left over for a code that went away


def test_a_problem_title_in_each_language() -> None:
    assert problem_title("unknown-service", "ru", "Unknown service") == "Неизвестная служба"
    assert problem_title("unknown-service", "uz", "Unknown service") == "Noma’lum xizmat"
    assert problem_title("unknown-service", "en", "Unknown service") == "Unknown service"
    assert problem_title("not-a-code", "ru", "Something") == "Something"


@pytest.mark.parametrize(
    ("asked", "header", "default", "chosen"),
    [
        ("ru", "en", "en", "ru"),  # ?lang= wins when it is one of ours
        ("de", "uz", "en", "uz"),  # else Accept-Language
        (None, "de, ru;q=0.8, en;q=0.5", "en", "ru"),  # the best of ours by q-value
        (None, "en;q=0.4, uz-Latn-UZ;q=0.9", "en", "uz"),  # a regional tag counts
        (None, "ru;q=0, en;q=0.1", "uz", "en"),  # q=0 refuses a language
        (None, "ru;q=x", "uz", "uz"),  # an unreadable q counts as 0
        (None, "de, fr", "uz", "uz"),  # none of ours: the node's default
        (None, "", "ru", "ru"),
        (None, "en;level=1;q=0.2, ru;q=0.3", "uz", "ru"),  # other parameters do not matter
    ],
)
def test_the_language_chosen(asked: str | None, header: str, default: str, chosen: str) -> None:
    assert language(asked, header, default) == chosen


def test_a_language_asked_for_is_kept_on_the_page_s_links() -> None:
    asked = choose({"lang": "ru"}, {"accept-language": "uz"}, "en")
    assert asked == Lang("ru", asked=True) and asked.query == "?lang=ru"
    assert asked.link("/inbox?done=x") == "/inbox?done=x&lang=ru"
    browser = choose({}, {"accept-language": "uz"}, "en")
    assert browser == Lang("uz") and browser.query == "" and browser.link("/inbox") == "/inbox"
    scope = {"query_string": b"a=1&lang=uz", "headers": [(b"accept-language", b"ru")]}
    assert from_scope(scope, "en") == "uz"
    assert from_scope({"query_string": b"", "headers": [(b"accept-language", b"ru")]}, "en") == "ru"


def test_texts_are_escaped_and_so_are_their_values() -> None:
    assert Lang("en").t("verify.unknown", number="<b>") == "No document &lt;b&gt; was issued here."


def test_a_page_says_its_language_and_links_the_others() -> None:
    response = page("T", "<h1>T</h1>", lang=Lang("uz"))
    body = response.body.decode()
    assert '<html lang="uz">' in body and "Asosiy qismga o‘tish" in body
    assert "href='?lang=ru'" in body and "href='?lang=en'" in body and "href='?lang=uz'" not in body
    assert response.headers["content-language"] == "uz"
    assert response.headers["vary"] == "Accept-Language"
