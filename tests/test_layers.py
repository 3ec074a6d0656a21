"""The import rules hold: layers from schemas/signing up to the CLI, and no circles.

The rules are import-linter contracts in ``pyproject.toml`` (``[tool.importlinter]``);
``docs/architecture.md`` ("Layers") explains them. This test runs them as ``lint-imports`` does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_import_contract_is_kept() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
         "lint_imports_command()", "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
