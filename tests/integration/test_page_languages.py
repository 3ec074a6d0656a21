"""The pages a person reads in the language chosen (``?lang=``, Accept-Language), and a citizen
opening their own document with an ID token: their own 200, someone else's 404, an expired token
401, each reading audited."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from bus.gateway.citizens import CITIZEN_CLIENT, CITIZEN_LOG_PATH
from bus.gateway.documents import CITIZEN_DOCUMENT
from bus.records.documents import format_number
from demo.data import PEOPLE
from demo.identity import DemoIdentityProvider
from demo.scenario import RESIDENCE, DemoStack

ALICE, BOB = PEOPLE[0], PEOPLE[1]
HTML = {"Accept": "text/html"}


@pytest.fixture
def browser(demo_stack: DemoStack) -> Iterator[httpx.Client]:
    """A citizen's browser: no member token, no bus headers."""
    with httpx.Client(base_url=demo_stack.gateway.url, timeout=10, headers=HTML,
                      follow_redirects=True) as client:
        yield client


@pytest.fixture
def idp(demo_stack: DemoStack) -> DemoIdentityProvider:
    assert demo_stack.identity is not None
    return demo_stack.identity


def _number(portal: httpx.Client, pinfl: str) -> str:
    r = portal.post(f"/v1/services/{RESIDENCE}", json={"pinfl": pinfl},
                    headers={"X-Bus-Purpose": "child-benefit"})
    assert r.status_code == 200, r.text
    return r.headers["X-Bus-Request-Number"]


def _says(page: httpx.Response, lang: str) -> None:
    assert f'<html lang="{lang}">' in page.text
    assert page.headers["content-language"] == lang and page.headers["vary"] == "Accept-Language"


def test_the_verify_form_in_uzbek_and_its_language_kept_to_the_document(
    portal: httpx.Client, browser: httpx.Client
) -> None:
    form = browser.get("/verify", headers={"Accept-Language": "uz, ru;q=0.5"})
    assert form.status_code == 200
    _says(form, "uz")
    assert "Hujjatni tekshirish" in form.text and ">Tekshirish</button>" in form.text
    assert "href='?lang=ru'" in form.text and "href='?lang=en'" in form.text
    asked = browser.get("/verify?lang=ru")
    _says(asked, "ru")
    assert "<input type='hidden' name='lang' value='ru'>" in asked.text  # kept through the form
    number = _number(portal, ALICE.pinfl)
    typed = browser.get("/verify", params={"number": number.lower(), "lang": "ru"})
    assert typed.status_code == 200 and typed.url.path == f"/verify/{number}"
    _says(typed, "ru")
    assert f"Документ {number}" in typed.text and "действительна</b>" in typed.text
    assert "Кем выдан" in typed.text and ALICE.pinfl not in typed.text
    english = browser.get(f"/verify/{number}")
    _says(english, "en")
    assert f"Document {number}" in english.text and ">valid</b>" in english.text


def test_the_no_such_document_page_says_why_in_the_language_asked(
    browser: httpx.Client,
) -> None:
    unknown = browser.get(f"/verify/{format_number('BUS', 2026, 999_999)}",
                          headers={"Accept-Language": "ru"})
    assert unknown.status_code == 404
    _says(unknown, "ru")
    assert "Документ не найден" in unknown.text and "здесь не выдавался" in unknown.text
    good = format_number("BUS", 2026, 123)
    mistyped = browser.get(f"/verify/{good[:-1]}{(int(good[-1]) + 1) % 10}?lang=uz")
    assert mistyped.status_code == 404 and "Nazorat raqami mos kelmadi" in mistyped.text
    _says(mistyped, "uz")
    malformed = browser.get("/verify/hello", headers={"Accept-Language": "en"})
    assert "This is not a request number" in malformed.text
    # a program still gets the problem, titled in its language
    problem = browser.get("/verify/hello", headers={"Accept": "application/json",
                                                    "Accept-Language": "ru"})
    assert problem.status_code == 404 and problem.json()["title"] == "Неизвестный документ"


def test_the_client_s_document_page_in_russian(demo_stack: DemoStack,
                                                portal: httpx.Client) -> None:
    number = _number(portal, ALICE.pinfl)
    page = portal.get(f"/v1/documents/{number}", headers={**HTML, "Accept-Language": "ru"})
    assert page.status_code == 200
    _says(page, "ru")
    assert "<h2>Данные</h2>" in page.text and "<h2>Проверка</h2>" in page.text
    assert 'alt="QR-код: ' in page.text and "Выдан через межведомственную шину" in page.text


def test_a_citizen_opens_their_own_document_with_an_id_token(
    demo_stack: DemoStack, portal: httpx.Client, browser: httpx.Client,
    idp: DemoIdentityProvider,
) -> None:
    alices, bobs = _number(portal, ALICE.pinfl), _number(portal, BOB.pinfl)
    alice = {"Authorization": f"Bearer {idp.id_token(ALICE.pinfl)}"}
    own = browser.get(f"/v1/documents/{alices}", headers={**alice, "Accept-Language": "uz"})
    assert own.status_code == 200, own.text
    _says(own, "uz")
    assert "Ma’lumotlar" in own.text and alices in own.text
    signed = browser.get(f"/v1/documents/{alices}",
                         headers={**alice, "Accept": "application/json"})
    assert signed.status_code == 200 and signed.json()["subject"] == ALICE.pinfl
    other = browser.get(f"/v1/documents/{bobs}", headers={**alice, "Accept-Language": "ru"})
    assert other.status_code == 404 and other.json()["title"] == "Неизвестный документ"
    assert BOB.pinfl not in other.text
    expired = idp.id_token(ALICE.pinfl, now=time.time() - 3600)
    late = browser.get(f"/v1/documents/{alices}", headers={"Authorization": f"Bearer {expired}"})
    assert late.status_code == 401 and late.json()["code"] == "unauthenticated"
    # the portal's path is unchanged beside it
    assert portal.get(f"/v1/documents/{bobs}").status_code == 200

    audit = demo_stack.node.audit
    mine = [e for e in audit.store.entries(subject=audit.subject_key(ALICE.pinfl))
            if e.service == CITIZEN_DOCUMENT]
    assert [e.outcome for e in mine[-3:]] == ["ok", "ok", "unknown-document"]
    assert all(e.client == CITIZEN_CLIENT and e.side == "gateway" for e in mine)
    refused = [e for e in audit.store.entries() if e.service == CITIZEN_DOCUMENT
               and e.outcome == "unauthenticated"]
    assert refused and refused[-1].subject is None  # an untrusted token names nobody
    # readings by the person are not "who obtained my data"
    report = browser.get(CITIZEN_LOG_PATH, headers={**alice, "Accept": "application/json"})
    assert all(e["service"] != CITIZEN_DOCUMENT for e in report.json()["entries"])


def test_the_access_report_as_a_page(
    portal: httpx.Client, browser: httpx.Client, idp: DemoIdentityProvider,
) -> None:
    _number(portal, ALICE.pinfl)
    alice = {"Authorization": f"Bearer {idp.id_token(ALICE.pinfl)}"}
    page = browser.get(CITIZEN_LOG_PATH, headers={**alice, "Accept-Language": "ru"})
    assert page.status_code == 200
    _says(page, "ru")
    assert "<h1>Кто получал сведения обо мне</h1>" in page.text
    assert "<th scope='col'>Ведомство</th>" in page.text and "child-benefit" in page.text
    assert "officer-17" in page.text and ALICE.pinfl not in page.text
    rows = re.findall(r"<tr><td data-label='Когда'>", page.text)
    assert rows  # one row per time data was handed out
    english = browser.get(CITIZEN_LOG_PATH + "?lang=en", headers=alice)
    assert "Who obtained data about me" in english.text and "<th scope='col'>Agency</th>" in (
        english.text)
    nobody = PEOPLE[-1]
    empty = browser.get(CITIZEN_LOG_PATH + "?lang=uz",
                        headers={"Authorization": f"Bearer {idp.id_token(nobody.pinfl)}"})
    assert "Hech bir idora" in empty.text
    json = browser.get(CITIZEN_LOG_PATH, headers={**alice, "Accept": "application/json"})
    assert json.json()["count"] == len(rows)
