"""A real browser for the page tests: Debian's headless Chromium through its chromedriver.

One browser per test module (``browser``), reused by its tests. ``.ci/run`` installs
``chromium`` and ``chromium-driver`` when they are missing. The flags keep a headless Chromium
running as root on a machine without network quiet: no sandbox (root), no GPU, and none of the
background fetching (updates, sync, QUIC) that would only meet refused connections.

``shoot(driver, name)`` writes a full-page PNG to ``docs/screenshots/NAME.png`` when
``BUS_SCREENSHOTS=1`` (README.md's "Pages" links them); otherwise it writes nothing, so a test
run leaves the work tree clean. ``test_screenshot_links.py`` checks that README.md links exactly
the PNGs there and that they are exactly the names ``shoot`` is called with (written out).
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--lang=en-US", "--window-size=1100,900",
]
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("the browser tests need Debian's chromium and chromium-driver "
                    "(apt-get install -y chromium chromium-driver; .ci/run does it)")
    profile = tempfile.mkdtemp(prefix="bus-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def click_and_load(driver: WebDriver, element: WebElement) -> None:
    """Click ``element`` (a link or a submit button) and wait until the next page is there."""
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    def gone(_: WebDriver) -> bool:
        try:
            old.is_enabled()
        except WebDriverException:  # stale, or "does not belong to the document"
            return True
        return False

    WebDriverWait(driver, 10).until(gone)
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return document.readyState") == "complete")


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
