"""The operator's desk in a real browser: an archivist signs in at /inbox, sees the waiting
tasks soonest deadline first, opens one, makes a mistake and sees it under the field (nothing
sent), corrects it and sends, and the portal's poll returns the archive's signed answer; a
rejection with a reason; a second official too late for a task already answered; sign-out; and
the pages at a phone's width, from the keyboard and through a screen reader's landmarks."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from demo.archive import ARCHIVE, poll_result
from demo.data import PEOPLE, UNKNOWN_PINFL, birth_certificate
from demo.scenario import verify_answer
from tests.browser.desk import (
    ESTATES,
    RECORD,
    SECOND,
    URGENT,
    Desk,
    fill,
    fill_answer,
    send,
    sign_in,
    text_of,
)
from tests.browser.pages import click_and_load, landmarks, overflow, phone, shoot, unlabelled

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_an_archivist_answers_the_archive_task_in_the_browser(
    browser: WebDriver, desk: Desk
) -> None:
    task_id, location = desk.ask(ARCHIVE, RECORD.pinfl)  # three days to answer
    urgent_id, _ = desk.ask(URGENT, PEOPLE[0].pinfl)  # filed later, due sooner
    browser.get(f"{desk.url}/inbox")
    assert browser.find_element(By.ID, "password")  # the sign-in form, not a browser dialog
    shoot(browser, "inbox-sign-in")
    browser.find_element(By.ID, "name").send_keys("archivist")
    browser.find_element(By.ID, "password").send_keys("not the password")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "main form button"))
    assert "do not match" in text_of(browser, "#errors")
    browser.find_element(By.ID, "password").send_keys(desk.passwords["archivist"])
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "main form button"))

    # the list: who is signed in, how many wait, soonest deadline first, in the node's zone
    assert "Signed in as Aziza Karimova (archivist)" in text_of(browser, "header nav")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.list tbody tr")
    assert f"Inbox ({len(rows)} waiting)" in text_of(browser, "header nav") and len(rows) >= 2
    links = [r.find_element(By.TAG_NAME, "a").get_attribute("href") for r in rows]
    assert links.index(f"{desk.url}/inbox/{urgent_id}") < links.index(
        f"{desk.url}/inbox/{task_id}")
    deadlines = [str(r.find_element(By.CSS_SELECTOR, "time").get_attribute("datetime"))
                 for r in rows]
    assert deadlines == sorted(deadlines)
    # in the node's time zone (the example configuration's Asia/Tashkent, UTC+05:00)
    assert "Times are in Asia/Tashkent time (UTC+05:00)" in text_of(browser, "main")
    first = rows[0].find_element(By.CSS_SELECTOR, "time")
    due = dt.datetime.fromisoformat(str(first.get_attribute("datetime")))
    assert first.text == f"{due + dt.timedelta(hours=5):%Y-%m-%d %H:%M}"
    shoot(browser, "inbox-list")

    # the task: the request and a form made from the answer's schema
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, f"a[href='/inbox/{task_id}']"))
    assert RECORD.pinfl in text_of(browser, "main")
    assert browser.find_element(By.NAME, "child.born_on").get_attribute("type") == "date"
    assert browser.find_element(By.NAME, "child.sex").tag_name == "select"
    assert browser.find_element(By.NAME, "parents.1.role").tag_name == "select"
    shoot(browser, "inbox-task")

    # a mistake: the certificate's number without its series
    fill_answer(browser, "0038215")
    send(browser)
    error = browser.find_element(By.ID, "f-number-error")
    assert "not in the expected form" in error.text and "I-TN 0451207" in error.text
    number = browser.find_element(By.NAME, "number")
    assert number.get_attribute("aria-invalid") == "true"
    assert "f-number-error" in str(number.get_attribute("aria-describedby"))
    # the error sits right under its own label, before the field
    assert browser.execute_script(
        "return arguments[0].nextElementSibling === arguments[1]", error, number)
    assert "Please correct 1 field(s); nothing was sent" in text_of(browser, "#errors")
    assert browser.find_element(By.NAME, "child.full_name").get_attribute("value") == (
        f"{RECORD.surname} {RECORD.given_name} {RECORD.patronymic}")  # kept as typed
    assert browser.find_element(By.NAME, "child.born_on").get_attribute("value") == "1990-03-22"
    assert desk.portal.get(location).status_code == 202  # nothing was sent
    shoot(browser, "inbox-task-error")

    fill(browser, "number", RECORD.certificate)
    send(browser)
    assert "is closed" in text_of(browser, "main [role=status]")
    assert f"/inbox/{task_id}" not in browser.page_source
    shoot(browser, "inbox-answered")
    answer = poll_result(desk.portal, location)
    assert answer.status_code == 200, answer.text
    signed = answer.json()
    assert signed["payload"] == birth_certificate(RECORD).model_dump(mode="json")
    assert verify_answer(signed, desk.keys / "state-archive.pub", "state-archive")


def test_a_task_is_rejected_with_a_reason(browser: WebDriver, desk: Desk) -> None:
    task_id, location = desk.ask(ARCHIVE, UNKNOWN_PINFL)
    sign_in(browser, desk.url, "archivist", desk.passwords["archivist"])
    browser.get(f"{desk.url}/inbox/{task_id}")
    refuse = "//button[text()='Sign and send the refusal']"
    # no reason: the error at the reason, which has the focus; the choice kept; nothing sent
    Select(browser.find_element(By.ID, "code")).select_by_value("provider-rejected")
    click_and_load(browser, browser.find_element(By.XPATH, refuse))
    error = browser.find_element(By.ID, "detail-error")
    assert error.text == "Write the reason the asker will read; nothing was sent."
    detail = browser.find_element(By.ID, "detail")
    assert detail.get_attribute("aria-invalid") == "true"
    assert "detail-error" in str(detail.get_attribute("aria-describedby"))
    assert browser.execute_script(
        "return arguments[0].nextElementSibling === arguments[1]", error, detail)
    assert browser.switch_to.active_element == detail  # typing goes there
    assert Select(browser.find_element(By.ID, "code")).first_selected_option.get_attribute(
        "value") == "provider-rejected"
    assert desk.portal.get(location).status_code == 202  # nothing was sent
    assert desk.inbox.task(task_id).state == "open"
    shoot(browser, "inbox-reject-error")

    Select(browser.find_element(By.ID, "code")).select_by_value("no-data")
    browser.find_element(By.ID, "detail").send_keys("Not in the 1985-1995 birth books")
    click_and_load(browser, browser.find_element(By.XPATH, refuse))
    assert "is closed" in text_of(browser, "main [role=status]")
    refused = poll_result(desk.portal, location)
    assert refused.status_code == 404 and refused.json()["code"] == "no-data"
    assert "1985-1995 birth books" in refused.json()["detail"]


def test_the_language_chosen_stays_through_the_answer_form(
    browser: WebDriver, desk: Desk
) -> None:
    task_id, location = desk.ask(ARCHIVE, RECORD.pinfl)
    sign_in(browser, desk.url, "archivist", desk.passwords["archivist"])
    browser.get(f"{desk.url}/inbox?lang=ru")
    assert text_of(browser, "h1") == "Задачи, ожидающие вас"
    click_and_load(browser, browser.find_element(
        By.CSS_SELECTOR, f"a[href='/inbox/{task_id}?lang=ru']"))
    answer = "form[action$='/answer?lang=ru'] button[type=submit]"
    assert text_of(browser, answer) == "Подписать и отправить ответ"
    fill_answer(browser, "0038215")  # a mistake: the page that shows it is in Russian too
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, answer))
    assert browser.find_element(By.ID, "f-number-error")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ru"
    assert text_of(browser, "h2#answer") == "Ответ"
    fill(browser, "number", RECORD.certificate)
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, answer))
    assert browser.current_url.endswith("lang=ru")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ru"
    assert text_of(browser, "main [role=status]").startswith(f"Задача {task_id[:8]}… закрыта")
    assert text_of(browser, "h1") == "Задачи, ожидающие вас"
    assert poll_result(desk.portal, location).status_code == 200


def test_a_second_official_cannot_answer_a_task_already_answered(
    browser: WebDriver, desk: Desk
) -> None:
    task_id, location = desk.ask(ARCHIVE, RECORD.pinfl)
    # the second official opens the task (on the node's other name: a cookie jar of its own)
    sign_in(browser, desk.other_url, SECOND, desk.passwords[SECOND])
    assert "Signed in as Bekzod Usmonov" in text_of(browser, "header nav")
    browser.get(f"{desk.other_url}/inbox/{task_id}")
    fill_answer(browser, RECORD.certificate)
    # meanwhile the archivist answers the same task in another window
    browser.switch_to.new_window("tab")
    sign_in(browser, desk.url, "archivist", desk.passwords["archivist"])
    browser.get(f"{desk.url}/inbox/{task_id}")
    fill_answer(browser, RECORD.certificate)
    send(browser)
    assert "is closed" in text_of(browser, "main [role=status]")
    browser.close()
    browser.switch_to.window(browser.window_handles[0])
    send(browser)  # too late
    note = text_of(browser, "main [role=alert]")
    assert "already answered by Aziza Karimova (archivist)" in note and "not sent" in note
    assert not browser.find_elements(By.NAME, "csrf") or not browser.find_elements(
        By.XPATH, "//button[text()='Sign and send the answer']")
    shoot(browser, "inbox-task-taken")
    answer = poll_result(desk.portal, location)
    assert answer.status_code == 200
    assert answer.json()["payload"]["number"] == RECORD.certificate


def test_a_list_of_properties_grows_one_group_at_a_time(browser: WebDriver, desk: Desk) -> None:
    pinfl = PEOPLE[0].pinfl
    task_id, location = desk.ask(ESTATES, pinfl)
    sign_in(browser, desk.url, "archivist", desk.passwords["archivist"])
    browser.get(f"{desk.url}/inbox/{task_id}")
    assert not browser.find_elements(By.NAME, "properties.1.address")  # one group to start
    # what the request says is filled in already
    assert browser.find_element(By.NAME, "pinfl").get_attribute("value") == pinfl
    estates = [("10:01:02:03:04:0005", "house", "Toshkent, Yunusobod 4", "120.5", "1/1",
                "1988-05-17"),
               ("10:01:02:03:04:0006", "land", "Toshkent viloyati, Zangiota", "600", "1/2",
                "1991-09-01")]
    for i, estate in enumerate(estates):
        if i:
            click_and_load(browser, browser.find_element(
                By.XPATH, "//button[text()='Add another property']"))
        for key, value in zip(("cadastral_number", "kind", "address", "area_m2", "share",
                               "registered_on"), estate, strict=True):
            fill(browser, f"properties.{i}.{key}", value)
    assert browser.find_element(By.NAME, "properties.0.address").get_attribute(
        "value") == estates[0][2]  # the first group kept what was typed
    shoot(browser, "inbox-task-list")
    send(browser)
    assert "is closed" in text_of(browser, "main [role=status]")
    answer = poll_result(desk.portal, location)
    assert answer.status_code == 200, answer.text
    kept = answer.json()["payload"]["properties"]
    assert [(p["cadastral_number"], p["kind"], p["area_m2"], p["registered_on"]) for p in kept
            ] == [(e[0], e[1], e[3], e[5]) for e in estates]


def test_the_pages_work_at_a_phone_width_and_from_the_keyboard(
    browser: WebDriver, desk: Desk
) -> None:
    task_id, _ = desk.ask(ARCHIVE, RECORD.pinfl)
    sign_in(browser, desk.url, "archivist", desk.passwords["archivist"])
    for path in ("/inbox", f"/inbox/{task_id}"):
        browser.get(f"{desk.url}{path}")
        assert landmarks(browser) == {"header": 1, "nav": 1, "main": 1, "h1": 1}
        assert unlabelled(browser) == []
        assert browser.find_elements(By.CSS_SELECTOR, "meta[name=viewport]")

    # keyboard only: from the top, Tab reaches the skip link, the header's controls and then
    # every control of the answer form in order, ending at its button
    browser.get(f"{desk.url}/inbox/{task_id}")
    form = browser.find_element(By.CSS_SELECTOR, "form[action$='/answer']")
    controls = [e.get_attribute("id") or e.text for e in form.find_elements(
        By.CSS_SELECTOR, "input:not([type=hidden]), select, textarea, button")]
    assert len(controls) > 10
    reached: list[str] = []
    for _ in range(80):  # the page just loaded: nothing has the focus yet
        ActionChains(browser).send_keys(Keys.TAB).perform()
        focused = browser.switch_to.active_element
        reached.append(focused.get_attribute("id") or focused.text)
        if reached[-1] == "f-registry_office":  # typing goes into the focused field
            ActionChains(browser).send_keys("Tosh").perform()
        if focused.text == "Sign and send the answer":
            break
    assert reached[0] == "Skip to the content"
    assert "Sign out" in reached[:6]
    stops = [r for i, r in enumerate(reached) if i == 0 or r != reached[i - 1]]  # a date
    assert [r for r in stops if r in controls] == controls  # input is three stops: m, d, y
    # and a value typed through the keyboard lands in the focused field
    assert browser.find_element(By.ID, "f-registry_office").get_attribute("value") == "Tosh"

    with phone(browser):
        browser.get(f"{desk.url}/inbox")
        assert browser.execute_script("return window.innerWidth") == 390
        assert overflow(browser) == 0
        shoot(browser, "phone-inbox-list")
        browser.get(f"{desk.url}/inbox/{task_id}")
        assert overflow(browser) == 0
        shoot(browser, "phone-inbox-task")
        send(browser)  # every error shown, still within the screen
        assert browser.find_elements(By.CSS_SELECTOR, ".error")
        assert overflow(browser) == 0


def test_signing_out_ends_the_session(browser: WebDriver, desk: Desk) -> None:
    sign_in(browser, desk.url, "archivist", desk.passwords["archivist"])
    cookie = browser.get_cookie("bus_inbox")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    click_and_load(browser, browser.find_element(By.XPATH, "//button[text()='Sign out']"))
    assert "You are signed out." in text_of(browser, "main")
    browser.get(f"{desk.url}/inbox")
    assert browser.find_elements(By.ID, "password")  # asked to sign in again
    assert landmarks(browser) == {"header": 1, "nav": 1, "main": 1, "h1": 1}  # languages only
    assert browser.find_elements(By.CSS_SELECTOR, "nav a[hreflang]")
    assert not browser.find_elements(By.XPATH, "//button[text()='Sign out']")
    assert unlabelled(browser) == []
    with phone(browser):
        assert overflow(browser) == 0
    # the session is over on the node, not only in this browser
    r = httpx.get(f"{desk.url}/inbox", cookies={"bus_inbox": cookie["value"]}, timeout=5)
    assert r.status_code == 401 and "Sign in" in r.text
