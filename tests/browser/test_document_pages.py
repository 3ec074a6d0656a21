"""The document pages in a real browser: the client's document renders with its data and a QR
code; the code, decoded from a screenshot, leads to the public /verify page, which shows the
signature's state (valid, then revoked) and no personal data; a citizen types a number at
/verify; the pages fit a phone's screen."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest
import zxingcpp
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from demo.data import ARCHIVE_BIRTHS, BIRTHS, PEOPLE
from demo.scenario import DEMO_CA_PASSPHRASE, RESIDENCE, DemoStack, start_stack
from signing import CertificateAuthority
from tests.browser.pages import click_and_load, landmarks, overflow, phone, shoot, unlabelled

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PERSON = PEOPLE[0]
# every identifier and name the demo knows: none of them may show on the public page
PERSONAL = sorted({p.pinfl for p in PEOPLE} | {b.pinfl for b in (*BIRTHS, *ARCHIVE_BIRTHS)}
                  | {PERSON.surname, PERSON.given_name, "officer-17"})


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    stack = start_stack(tmp_path_factory.mktemp("pki-demo"), pki=True)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def number(stack: DemoStack) -> str:
    """The request number of a residence record the portal obtained."""
    r = httpx.post(f"{stack.gateway.url}/v1/services/{RESIDENCE}", json={"pinfl": PERSON.pinfl},
                   headers={"Authorization": f"Bearer {stack.token}", "X-Bus-User": "officer-17",
                            "X-Bus-Purpose": "child-benefit"}, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.headers["X-Bus-Request-Number"])


def as_portal(driver: WebDriver, token: str | None) -> None:
    """Send the portal's API token with every request of the browser (None: stop)."""
    driver.execute_cdp_cmd("Network.enable", {})
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": headers})


def read_qr(png: bytes) -> list[str]:
    return [found.text for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def test_the_documents_qr_code_leads_to_its_verify_page(
    browser: WebDriver, stack: DemoStack, number: str
) -> None:
    as_portal(browser, stack.token)
    try:
        browser.get(f"{stack.gateway.url}/v1/documents/{number}")
        assert browser.find_element(By.TAG_NAME, "h1").text == (
            "Current residence registration of a person")
        main = browser.find_element(By.TAG_NAME, "main").text
        assert number in main and PERSON.pinfl in main  # the client sees the data
        assert "(UTC+05:00)" in main  # issued at, in the node's time zone
        assert landmarks(browser) == {"header": 1, "nav": 1, "main": 1, "h1": 1}
        shoot(browser, "document")
        qr = browser.find_element(By.CSS_SELECTOR, "main img")
        browser.execute_script("arguments[0].scrollIntoView()", qr)
        decoded = read_qr(browser.get_screenshot_as_png())  # what a phone's camera sees
        with phone(browser):
            assert overflow(browser) == 0
            shoot(browser, "phone-document")
    finally:
        as_portal(browser, None)
    assert decoded == [f"{stack.gateway.url}/verify/{number}"]

    browser.get(decoded[0])  # a citizen scans the code: no token, nothing personal
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Document {number}"
    signature = browser.find_element(By.XPATH, "//th[text()='Signature (checked now)']/../td")
    assert signature.text.startswith("valid")
    assert [word for word in PERSONAL if word in browser.page_source] == []
    assert landmarks(browser) == {"header": 1, "nav": 1, "main": 1, "h1": 1}
    shoot(browser, "verify-valid")
    with phone(browser):
        assert overflow(browser) == 0
        shoot(browser, "phone-verify")


def test_a_citizen_types_the_number_from_the_paper(
    browser: WebDriver, stack: DemoStack, number: str
) -> None:
    browser.get(f"{stack.gateway.url}/verify")
    assert unlabelled(browser) == []
    assert landmarks(browser) == {"header": 1, "nav": 1, "main": 1, "h1": 1}
    shoot(browser, "verify-form")
    with phone(browser):
        assert overflow(browser) == 0
    field = browser.find_element(By.ID, "number")
    field.send_keys(f" {number.lower()} ")  # as read out at a counter
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "main button"))
    assert browser.current_url == f"{stack.gateway.url}/verify/{number}"
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Document {number}"
    mistyped = number[:-1] + str((int(number[-1]) + 1) % 10)  # the check digit catches it
    browser.get(f"{stack.gateway.url}/verify")
    browser.find_element(By.ID, "number").send_keys(mistyped)
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "main button"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "No such document"
    assert browser.find_element(By.ID, "number").get_attribute("value") == mistyped
    assert landmarks(browser) == {"header": 1, "nav": 1, "main": 1, "h1": 1}
    assert unlabelled(browser) == []  # the form to try again
    shoot(browser, "verify-unknown")
    with phone(browser):
        assert overflow(browser) == 0
    # the header's language links: the same page in Russian, then in Uzbek, whose form keeps it
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "header a[hreflang='ru']"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Документ не найден"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ru"
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "header a[hreflang='uz']"))
    field = browser.find_element(By.ID, "number")
    field.clear()
    field.send_keys(number)
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "main button"))
    assert browser.current_url == f"{stack.gateway.url}/verify/{number}?lang=uz"
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Hujjat {number}"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "uz"


def test_the_verify_page_shows_a_revoked_signature(
    browser: WebDriver, stack: DemoStack, number: str
) -> None:
    browser.get(f"{stack.gateway.url}/verify/{number}")
    ca = CertificateAuthority.open(stack.state / "ca", DEMO_CA_PASSPHRASE.encode())
    ca.revoke(ca.find("residence-registry")[0].serial_number, "key_compromise")
    stack.node.trust.reload()  # (or wait trust.reload_s)
    browser.refresh()
    signature = browser.find_element(By.XPATH, "//th[text()='Signature (checked now)']/../td")
    assert signature.text.startswith("REVOKED")
    assert [word for word in PERSONAL if word in browser.page_source] == []
    shoot(browser, "verify-revoked")
