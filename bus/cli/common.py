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

__all__ = ["console", "err_console", "load_or_exit", "warn_plain_secrets"]

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


def warn_plain_secrets(file: Path, settings: BusSettings) -> None:
    """Say loudly that a configuration accepts secrets written in it (a demo's, never real)."""
    if not settings.allow_plain_secrets:
        return
    held = ", ".join(settings.plain_secrets) or "none at the moment"
    err_console.print(
        f"warning: {file} says allow_plain_secrets: true — secrets written in it are accepted "
        f"({held}). For a demo only: a real node takes them from the environment (BUS_…) or "
        "from 0600 files ({file: PATH}).",
        markup=False, highlight=False, soft_wrap=True,
    )
