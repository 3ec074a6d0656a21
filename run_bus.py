#!/usr/bin/env python3
"""Entry point of the interagency bus: ``python run_bus.py --help``.

``serve``, ``check-config``, ``keys`` … come from ``bus.cli.app``; ``demo`` and ``bench`` are added
here because the demo (stand-in agencies and the portal's side) and the benchmark harness sit
above the bus. Both are commands of the installed ``bus`` too (one command line), but their
packages are not in the wheel: each imports its package only when it runs, and when that is
not importable (an installed bus without the repository's checkout) it says to run it from a
checkout (``python run_bus.py demo``) and exits with 2.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from bus.cli.app import app, console
from bus.cli.common import err_console
from signing.files import restrict_umask

__all__ = ["bench", "demo", "main"]


def _from_checkout(command: str, module: str) -> ModuleType:
    """``module`` of the repository's checkout, or exit 2 saying where ``command`` runs from."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        package = module.partition(".")[0]
        if exc.name not in (package, module):
            raise  # the package is there but something it needs is not: its own error
        err_console.print(
            f"`{command}` runs from a checkout of the repository: python run_bus.py {command}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
        raise typer.Exit(2) from None


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

    scenario = _from_checkout("demo", "demo.scenario")
    count = workers if workers is not None else default_workers()
    raise typer.Exit(
        scenario.run_demo(
            console, keep=keep, state_dir=state_dir, port=port, pki=not public_keys, workers=count
        )
    )


@app.command()
def bench(
    requests: Annotated[
        int | None,
        typer.Option("--requests", "-n", min=1, help="timed exchanges per cell [default: 2000]"),
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="about 30 s: 300 exchanges per cell, at most 1.5 s each")
    ] = False,
    write: Annotated[bool, typer.Option(help="write bench/RESULTS.md")] = True,
    clients: Annotated[str, typer.Option(help="concurrency levels, comma-separated")] = "1,8,32",
    only: Annotated[
        list[str] | None,
        typer.Option(help="only this system (its whole name), or those whose name contains "
                     "this (repeatable)"),
    ] = None,
    mode: Annotated[
        str, typer.Option(help="load generator: threads (httpx.Client) or asyncio")
    ] = "threads",
    amqp_url: Annotated[
        str | None,
        typer.Option(
            envvar="BUS_TRANSPORT__URL",
            show_envvar=True,
            help="RabbitMQ URL [default: amqp://guest:guest@127.0.0.1:5672/%2F]",
        ),
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="keep keys, configs and logs here (default: temporary)")
    ] = None,
) -> None:
    """Benchmark the bus against raw floors (plain HTTP, plain pika) and the demo's path."""
    cli = _from_checkout("bench", "bench.cli")
    cli.run_bench_command(
        requests=requests, quick=quick, write=write, clients=clients, only=only, mode=mode,
        amqp_url=amqp_url, state_dir=state_dir,
    )  # fmt: skip


def main() -> None:
    """The installed ``bus`` command: the same commands as ``python run_bus.py``."""
    restrict_umask()  # every file and folder the node writes: its account's only
    app(prog_name=Path(sys.argv[0]).name)


if __name__ == "__main__":
    main()
