"""One command line: the installed ``bus`` command and ``python run_bus.py`` are the same app."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands(*argv: str) -> set[str]:
    done = subprocess.run(
        [*argv, "--help"], capture_output=True, text=True, check=True, timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}, cwd=ROOT,
    )
    return set(re.findall(r"^│ ([a-z][a-z-]+) ", done.stdout, flags=re.MULTILINE))


def test_the_bus_command_has_every_command_of_run_bus() -> None:
    installed = Path(sys.executable).with_name("bus")
    from_checkout = _commands(sys.executable, str(ROOT / "run_bus.py"))
    assert {"serve", "demo", "bench", "inbox", "dlq", "audit"} <= from_checkout
    assert _commands(str(installed)) == from_checkout
