"""README.md's screenshot links, the PNGs in docs/screenshots and the names the browser tests
shoot are the same set: a shot renamed, added or dropped in a test cannot leave a dead link, an
unlinked picture or a stale file behind. (No browser: this reads files only.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.browser.pages import SCREENSHOTS

ROOT = SCREENSHOTS.parents[1]
TESTS = Path(__file__).resolve().parent


def linked() -> set[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return set(re.findall(r"\(docs/screenshots/([^)/]+)\.png\)", readme))


def on_disk() -> set[str]:
    return {png.stem for png in SCREENSHOTS.glob("*.png")}


def shot() -> tuple[set[str], list[str]]:
    """The names ``shoot(driver, NAME)`` is called with, and the calls whose name is not a
    string literal (which this check could not see)."""
    names: set[str] = set()
    unreadable: list[str] = []
    for source in sorted(TESTS.glob("test_*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "shoot"):
                continue
            name = node.args[1] if len(node.args) > 1 else None
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                names.add(name.value)
            else:
                unreadable.append(f"{source.name}:{node.lineno}")
    return names, unreadable


def test_every_shoot_call_names_its_screenshot_literally() -> None:
    names, unreadable = shot()
    assert unreadable == [], "call shoot(driver, 'a-name') with the name written out"
    assert names  # the walk found the calls


def test_readme_links_every_screenshot_the_tests_make_and_no_other() -> None:
    names, _ = shot()
    assert sorted(linked() - on_disk()) == [], "README links a PNG that is not there"
    assert sorted(on_disk() - linked()) == [], "a PNG in docs/screenshots is not linked"
    assert sorted(names - on_disk()) == [], (
        "a test shoots a picture not in docs/screenshots: run BUS_SCREENSHOTS=1 "
        ".venv/bin/python -m pytest tests/browser and commit it")
    assert sorted(on_disk() - names) == [], "a PNG no test makes any more (stale): delete it"
