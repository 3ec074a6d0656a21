"""What every command of the command line shares: its consoles and loading a config or exiting.

Each command module imports these from here (never from ``bus.cli.app``, which imports them all).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from bus.config.loader import ConfigError, load_settings
from bus.config.settings import BusSettings

__all__ = ["console", "err_console", "load_or_exit"]

# Wide enough for the demo's table when the output is a pipe or a CI log, not a terminal.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def load_or_exit(path: Path, *, check_references: bool = True) -> BusSettings:
    """Load a config or print every problem (file:line: path: what) and exit 2."""
    try:
        return load_settings(path, check_references=check_references)
    except ConfigError as exc:
        err_console.print(f"[red]configuration {exc.file} is invalid:[/red]")
        for problem in exc.problems:
            err_console.print("  " + problem.render(exc.file), markup=False, highlight=False)
        raise typer.Exit(2) from None
