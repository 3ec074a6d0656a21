#!/usr/bin/env python3
"""Entry point of the interagency bus: ``python run_bus.py --help``.

``serve``, ``check-config``, ``keys`` … come from ``bus.cli.app``; ``demo`` and ``bench`` are added
here because the demo (stand-in agencies and the portal's side) and the benchmark harness sit
above the bus.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bench.cli import bench_command
from bus.cli.app import app, console
from signing.files import restrict_umask


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="leave everything running and print URLs")] = False,
    state_dir: Annotated[Path | None, typer.Option(help="where keys and databases go")] = None,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="the node's gateway port (0: any free one)")
    ] = 0,
    public_keys: Annotated[
        bool, typer.Option(help="trust bare Ed25519 keys instead of a demo CA's certificates")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="the node's processes, as `serve --workers` (1: the node runs inside the demo) "
            "(default: the number of cores)",
        ),
    ] = None,
) -> None:
    """Start demo agencies and a node on the embedded transport, and make signed exchanges."""
    from bus.cli.workers import default_workers
    from demo.scenario import run_demo

    count = workers if workers is not None else default_workers()
    raise typer.Exit(
        run_demo(
            console, keep=keep, state_dir=state_dir, port=port, pki=not public_keys, workers=count
        )
    )


app.command("bench")(bench_command)  # the same function as ``python -m bench``


def main() -> None:
    """The installed ``bus`` command: the same commands as ``python run_bus.py``."""
    restrict_umask()  # every file and folder the node writes: its account's only
    app(prog_name=Path(sys.argv[0]).name)


if __name__ == "__main__":
    main()
