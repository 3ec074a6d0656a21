"""A real browser for the page tests: Debian's headless Chromium through its chromedriver.

One browser per test module (``browser``), reused by its tests. ``.ci/run`` installs
``chromium`` and ``chromium-driver`` when they are missing. The flags keep a headless Chromium
running as root on a machine without network quiet: no sandbox (root), no GPU, and none of the
background fetching (updates, sync, QUIC) that would only meet refused connections.

``desk``: a node of the demo's configuration serving the operator's inbox, one per test module
(``tests/browser/desk.py``). What the tests do with pages is in ``tests/browser/pages.py``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.desk import Desk, start_desk

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--lang=en-US", "--window-size=1100,900",
]


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




@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    with start_desk(tmp_path_factory.mktemp("desk")) as desk:
        yield desk
