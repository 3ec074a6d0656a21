"""The node the inbox's browser tests drive (``conftest.desk``), and what an official does on
its pages: sign in, fill the archive task's answer form, send it."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from bus.cli.app import DEMO_MEMBERS, new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.inbox.desk import InboxDesk
from bus.node.wiring import Node
from demo.archive import ARCHIVE, wait_for_task
from demo.data import ARCHIVE_BIRTHS, birth_certificate
from demo.scenario import write_config
from demo.servers import serve_in_thread
from signing import generate_member_key
from tests.browser.pages import click_and_load

URGENT = "state-archive/urgent-birth-record/v1"  # the same desk, a two-hour deadline
ESTATES = "state-archive/historic-property/v1"  # an answer with a list of any length
RECORD = ARCHIVE_BIRTHS[0]
SECOND = "b.usmonov"


@dataclass
class Desk:
    url: str  # http://127.0.0.1:PORT
    other_url: str  # http://localhost:PORT: another host, so another browser cookie jar
    portal: httpx.Client
    inbox: InboxDesk
    keys: Path
    passwords: dict[str, str]

    def ask(self, service: str, pinfl: str) -> tuple[str, str]:
        r = self.portal.post(f"/v1/services/{service}", params={"mode": "async"},
                             json={"pinfl": pinfl})
        assert r.status_code == 202, r.text
        wait_for_task(self.inbox, r.headers["X-Bus-Message-Id"])
        return r.headers["X-Bus-Message-Id"], r.headers["Location"]


@contextlib.contextmanager
def start_desk(tmp: Path) -> Iterator[Desk]:
    """A node of the demo's configuration with two archivists and an urgent archive service."""
    for member in DEMO_MEMBERS:
        generate_member_key(tmp / "keys", member)
    token, digest = new_token()
    archivist, archivist_digest = new_token()
    second, second_digest = new_token()
    path = write_config(tmp, residence_url="http://127.0.0.1:9", cadastre_db=tmp / "c.db",
                        token_sha256=digest, archivist_sha256=archivist_digest)
    config = yaml.safe_load(path.read_text())
    config["services"][URGENT] = {**config["services"][ARCHIVE], "timeout_s": 7200,
                                  "title": "Birth record for a court hearing (urgent)"}
    config["services"][ESTATES] = {**config["services"][ARCHIVE],
                                   "title": "Real estate in the pre-1995 land books",
                                   "request": "schemas.property.PropertyOwnershipRequest",
                                   "response": "schemas.property.PropertyOwnership"}
    for service in (URGENT, ESTATES):
        config["access"].append({"client": "portal", "service": service,
                                 "purpose": ["pension-assignment"]})
    config["inbox"]["operators"][SECOND] = {"name": "Bekzod Usmonov",
                                            "token_sha256": second_digest,
                                            "members": ["state-archive"]}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    node = Node(load_settings(path))
    headers = {"Authorization": f"Bearer {token}", "X-Bus-User": "pension-officer-3",
               "X-Bus-Purpose": "pension-assignment"}
    with serve_in_thread(create_app(node)) as server, \
            httpx.Client(base_url=server.url, headers=headers, timeout=10) as portal:
        assert node.inbox is not None  # made when the node starts
        yield Desk(server.url, f"http://localhost:{server.port}", portal, node.inbox,
                   tmp / "keys", {"archivist": archivist, SECOND: second})


def sign_in(driver: WebDriver, base: str, name: str, password: str) -> None:
    driver.get(f"{base}/inbox")
    if not driver.find_elements(By.ID, "password"):
        return  # signed in already
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    click_and_load(driver, driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Tasks waiting for you"


def text_of(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def fill(driver: WebDriver, field: str, text: str) -> None:
    element = driver.find_element(By.NAME, field)
    if element.tag_name == "select":
        Select(element).select_by_value(text)
        return
    element.clear()
    if element.get_attribute("type") == "date":  # typed as a person does: mm dd yyyy (en-US)
        day = dt.date.fromisoformat(text)
        element.send_keys(f"{day:%m%d%Y}")
    else:
        element.send_keys(text)


def answer_fields(number: str) -> dict[str, str]:
    """The archive's record of RECORD as the task's form wants it: field name -> value."""
    record = birth_certificate(RECORD).model_dump(mode="json")
    fields = {"number": number}
    fields.update({f"child.{key}": value for key, value in record["child"].items()})
    for i, parent in enumerate(record["parents"]):
        fields[f"parents.{i}.role"] = parent["role"]
        fields[f"parents.{i}.full_name"] = parent["full_name"]
    fields["registered_on"] = record["registered_on"]
    fields["registry_office"] = record["registry_office"]
    return fields


def fill_answer(driver: WebDriver, number: str) -> None:
    """The archive's record of RECORD, typed into the task's form."""
    for field, value in answer_fields(number).items():
        fill(driver, field, value)


def send(driver: WebDriver) -> None:
    click_and_load(driver, driver.find_element(
        By.XPATH, "//button[text()='Sign and send the answer']"))


