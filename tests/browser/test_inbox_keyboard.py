"""The operator's desk from the keyboard alone: an archivist who does not use a mouse signs in,
opens the archive task, fills its answer form and sends it with Tab, typing, Enter and Space
only, and the portal's poll returns the same signed answer as when it is done by mouse."""

from __future__ import annotations

import datetime as dt

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from demo.archive import ARCHIVE, poll_result
from demo.data import birth_certificate
from demo.scenario import verify_answer
from tests.browser.desk import RECORD, Desk, answer_fields, text_of
from tests.browser.pages import press_and_load, tab_to

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SEND = "Sign and send the answer"


def keys(driver: WebDriver, *typed: str) -> None:
    """Type into whatever has the focus, as a keyboard does."""
    ActionChains(driver).send_keys(*typed).perform()


def type_into_focused(driver: WebDriver, focused: WebElement, value: str) -> None:
    """``value`` into the focused control the way a person types it: a choice by the first
    letters of its text, a date as mm dd yyyy (en-US), text over whatever is there already."""
    if focused.tag_name == "select":
        option = focused.find_element(By.CSS_SELECTOR, f"option[value='{value}']")
        keys(driver, str(option.text))
    elif focused.get_attribute("type") == "date":
        keys(driver, f"{dt.date.fromisoformat(value):%m%d%Y}")
    else:
        ActionChains(driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL) \
            .send_keys(value).perform()
    assert focused.get_attribute("value") == value, focused.get_attribute("name")


def test_an_archivist_answers_the_archive_task_from_the_keyboard_alone(
    browser: WebDriver, desk: Desk
) -> None:
    task_id, location = desk.ask(ARCHIVE, RECORD.pinfl)
    browser.get(f"{desk.url}/inbox")  # the sign-in form: nothing has the focus yet

    # sign in: Tab to the name, type it, Tab to the password, type it, Enter
    tab_to(browser, lambda e: e.get_attribute("id") == "name")
    keys(browser, "archivist", Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "password"
    keys(browser, desk.passwords["archivist"])
    press_and_load(browser, Keys.ENTER)
    assert text_of(browser, "h1") == "Tasks waiting for you"

    # open the task: Tab to its link in the list, Enter
    tab_to(browser, lambda e: str(e.get_attribute("href")).endswith(f"/inbox/{task_id}"))
    press_and_load(browser, Keys.ENTER)
    assert browser.current_url == f"{desk.url}/inbox/{task_id}"

    # the answer form, field after field in the page's own order, then Space on its button
    wanted = answer_fields(RECORD.certificate)
    filled: list[str] = []

    def next_stop() -> WebElement:  # the next field still to fill, or the button
        return tab_to(browser, lambda e: e.text == SEND or (
            e.get_attribute("name") in wanted and e.get_attribute("name") not in filled))

    focused = next_stop()
    while focused.text != SEND:
        name = str(focused.get_attribute("name"))
        type_into_focused(browser, focused, wanted[name])
        filled.append(name)
        focused = next_stop()
    assert sorted(filled) == sorted(wanted)  # every field was reached by Tab
    press_and_load(browser, Keys.SPACE)

    assert "is closed" in text_of(browser, "main [role=status]")
    assert f"/inbox/{task_id}" not in browser.page_source
    answer = poll_result(desk.portal, location)
    assert answer.status_code == 200, answer.text
    assert answer.json()["payload"] == birth_certificate(RECORD).model_dump(mode="json")
    assert verify_answer(answer.json(), desk.keys / "state-archive.pub", "state-archive")
