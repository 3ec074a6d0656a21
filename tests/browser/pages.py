"""What the browser tests do with a page: follow a link or submit and wait for the next page
(by mouse or by keyboard), screenshot it into docs/screenshots, show it at a phone's width, and
read its layout and landmarks as a screen reader would.

``shoot(driver, name)`` writes a full-page PNG to ``docs/screenshots/NAME.png`` when
``BUS_SCREENSHOTS=1`` (README.md's "Pages" links them); otherwise it writes nothing, so a test
run leaves the work tree clean. ``test_screenshot_links.py`` checks that README.md links exactly
the PNGs there and that they are exactly the names ``shoot`` is called with (written out).
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}


def click_and_load(driver: WebDriver, element: WebElement) -> None:
    """Click ``element`` (a link or a submit button) and wait until the next page is there."""
    with next_page(driver):
        element.click()


def press_and_load(driver: WebDriver, key: str) -> None:
    """Press ``key`` on whatever has the focus (Enter on a link, Space on a button, ...) and
    wait until the next page is there: the keyboard's way to follow a link or submit."""
    with next_page(driver):
        ActionChains(driver).send_keys(key).perform()


@contextlib.contextmanager
def next_page(driver: WebDriver) -> Iterator[None]:
    """Wait, after the block, until the page it left is gone and the next one is loaded."""
    old = driver.find_element(By.TAG_NAME, "html")
    yield

    def gone(_: WebDriver) -> bool:
        try:
            old.is_enabled()
        except WebDriverException:  # stale, or "does not belong to the document"
            return True
        return False

    WebDriverWait(driver, 10).until(gone)
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return document.readyState") == "complete")


def tab_to(driver: WebDriver, found: Callable[[WebElement], bool], limit: int = 80) -> WebElement:
    """Press Tab until the focused element is one ``found`` accepts; return it."""
    for _ in range(limit):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        focused = driver.switch_to.active_element
        if found(focused):
            return focused
    raise AssertionError(f"{limit} presses of Tab never reached the element")


def shoot(driver: WebDriver, name: str) -> None:
    """The whole page as ``docs/screenshots/NAME.png``, when ``BUS_SCREENSHOTS=1``."""
    if os.environ.get("BUS_SCREENSHOTS") != "1":
        return
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
    })
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def overflow(driver: WebDriver) -> int:
    """How many CSS pixels the page is wider than the screen (0: nothing runs off the side)."""
    return int(driver.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth"))


@contextlib.contextmanager
def phone(driver: WebDriver) -> Iterator[WebDriver]:
    """The page at a phone's width (390 CSS px, a mobile viewport) inside the block."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    try:
        yield driver
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def landmarks(driver: WebDriver) -> dict[str, int]:
    """How many of each landmark and of ``h1`` the page has."""
    return {tag: len(driver.find_elements(By.CSS_SELECTOR, tag))
            for tag in ("header", "nav", "main", "h1")}


def unlabelled(driver: WebDriver) -> list[str]:
    """The form controls a screen reader would announce without a name."""
    return list(driver.execute_script("""
        const out = [];
        for (const el of document.querySelectorAll('input, select, textarea, button')) {
          if (el.type === 'hidden') continue;
          const named = (el.labels && el.labels.length && el.labels[0].textContent.trim())
            || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
            || (el.tagName === 'BUTTON' && el.textContent.trim());
          if (!named) out.push(el.outerHTML.slice(0, 120));
        }
        return out;"""))
