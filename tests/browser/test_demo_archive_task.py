"""The issue's acceptance, as an operator meets it: ``python run_bus.py demo --keep`` runs, and
with nothing but what it prints (the inbox's address, the archivist's sign-in, what the
archive's books say) and what the pages show, the archivist answers the waiting archive task in
the browser; the portal's poll it printed then returns the answer, and ``run_bus.py verify``
finds it signed by the state archive. The fields are found by their visible labels, as a person
finds them, not by their names in the schema."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from demo.archive import poll_result
from tests.browser.pages import click_and_load

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WAITING = re.compile(
    r"sign in at (?P<url>\S+)/inbox \(archivist / (?P<password>\S+)\) and answer it; the "
    r"archive's books say: certificate (?P<certificate>.+?), (?P<name>.+?), born (?P<born>\S+) "
    r"in (?P<place>.+?) \((?P<sex>\w+)\), parents (?P<parents>.+?), registered "
    r"(?P<registered>\S+) at (?P<office>.+?)\. The portal's poll, then signed: curl -s "
    r"(?P<poll>\S+) -H 'Authorization: Bearer (?P<token>[^']+)'")
CONFIG = re.compile(r"audit verify --config (\S+)")


@dataclass
class Kept:
    printed: re.Match[str]  # WAITING's line
    config: str  # the node's configuration, as printed


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kept]:
    """``run_bus.py demo --keep`` until it says Ctrl-C stops it; Ctrl-C at the end."""
    state = tmp_path_factory.mktemp("kept-demo")
    demo = subprocess.Popen(
        [sys.executable, "run_bus.py", "demo", "--keep", "--state-dir", str(state)], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "400"})
    lines: Queue[str] = Queue()
    out = demo.stdout
    assert out is not None

    def read() -> None:
        for line in out:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    said: list[str] = []
    try:
        give_up = time.monotonic() + 180
        while not said or "Ctrl-C stops everything." not in said[-1]:
            assert time.monotonic() < give_up, "".join(said[-30:])
            try:
                said.append(lines.get(timeout=1))
            except Empty:
                assert demo.poll() is None, "".join(said[-30:])
        text = "".join(said)
        waiting, config = WAITING.search(text), CONFIG.search(text)
        assert waiting is not None and config is not None, text[-3000:]
        yield Kept(waiting, config[1])
    finally:
        demo.send_signal(signal.SIGINT)  # what the demo says stops it
        try:
            demo.wait(30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait(10)
        reader.join(10)  # to the end of what it printed
        out.close()


def by_label(within: WebElement, label: str) -> WebElement:
    """The one control ``within`` whose label starts with ``label``."""
    found = within.find_elements(
        By.XPATH, f".//label[starts-with(normalize-space(.), '{label}')]")
    assert len(found) == 1, f"{len(found)} labels {label!r}"
    return within.find_element(By.ID, str(found[0].get_attribute("for")))


def group(within: WebElement, legend: str) -> WebElement:
    """The fieldset ``within`` whose legend starts with ``legend``."""
    return within.find_element(
        By.XPATH, f".//fieldset[legend[starts-with(normalize-space(.), '{legend}')]]")


def type_into(field: WebElement, text: str) -> None:
    if field.tag_name == "select":
        Select(field).select_by_visible_text(text)
    elif field.get_attribute("type") == "date":  # as a person types it (en-US): mm dd yyyy
        field.send_keys(f"{dt.date.fromisoformat(text):%m%d%Y}")
    else:
        field.clear()
        field.send_keys(text)


def test_an_operator_answers_the_kept_demos_archive_task_in_the_browser(
    browser: WebDriver, kept: Kept, tmp_path: Path
) -> None:
    said = kept.printed
    browser.get(f"{said['url']}/inbox")
    main = browser.find_element(By.TAG_NAME, "main")
    type_into(by_label(main, "Operator name"), "archivist")
    type_into(by_label(main, "Password"), said["password"])
    click_and_load(browser, main.find_element(By.TAG_NAME, "button"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Tasks waiting for you"

    # the archive's task, by its title in the list
    click_and_load(browser, browser.find_element(By.PARTIAL_LINK_TEXT, "paper archive"))
    asked = browser.find_element(By.XPATH, "//h2[normalize-space()='What they ask']"
                                           "/following::table[1]//th[text()='PINFL']/../td")
    pinfl = asked.text  # the person's number, from the page: not printed

    form = browser.find_element(By.CSS_SELECTOR, "form[action*='/answer']")
    type_into(by_label(form, "Number"), said["certificate"])
    child = group(form, "Child")
    for label, text in (("PINFL", pinfl), ("Full name", said["name"]), ("Born on", said["born"]),
                        ("Sex", said["sex"]), ("Place of birth", said["place"])):
        type_into(by_label(child, label), text)
    for i, parent in enumerate(said["parents"].split("; "), start=1):
        role, name = parent.split(" ", 1)
        type_into(by_label(group(form, f"Parent {i}"), "Role"), role)
        type_into(by_label(group(form, f"Parent {i}"), "Full name"), name)
    type_into(by_label(form, "Registered on"), said["registered"])
    type_into(by_label(form, "Registry office"), said["office"])
    click_and_load(browser, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "is closed" in browser.find_element(By.CSS_SELECTOR, "main [role=status]").text

    # the portal's poll, as printed, returns the answer the archivist typed, signed
    with httpx.Client(headers={"Authorization": f"Bearer {said['token']}"}, timeout=10) as portal:
        answer = poll_result(portal, said["poll"])
    assert answer.status_code == 200, answer.text
    payload = answer.json()["payload"]
    assert (payload["number"], payload["child"]["full_name"], payload["child"]["pinfl"]) == (
        said["certificate"], said["name"], pinfl)
    saved = tmp_path / "answer.json"
    saved.write_bytes(answer.content)
    checked = subprocess.run(
        [sys.executable, "run_bus.py", "verify", str(saved), "--config", kept.config], cwd=ROOT,
        capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "valid: signed by state-archive" in checked.stdout
