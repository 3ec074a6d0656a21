"""The ``bench`` command: ``python -m bench`` and ``python run_bus.py bench`` run this function.

Options: ``--requests N`` exchanges per cell, ``--quick`` (about 30 s), ``--write/--no-write``
``bench/RESULTS.md``, ``--clients 1,8,32``, ``--only NAME`` (repeatable; systems whose name
contains it), ``--mode threads|asyncio`` for the load generator, ``--amqp-url`` (or
``BUS_TRANSPORT__URL`` when it is an ``amqp://`` URL), ``--state-dir`` to keep keys and logs.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["bench_command", "command_line"]


def command_line(argv: list[str] | None = None) -> str:
    """How this run was started, as the user would type it."""
    argv = list(sys.argv if argv is None else argv)
    prog = Path(argv[0]).name if argv else ""
    head = "python run_bus.py" if prog == "run_bus.py" else "python -m bench"
    return " ".join([head, *(shlex.quote(a) for a in argv[1:])])


def bench_command(
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
    from bench.runner import DEFAULT_AMQP_URL, BenchOptions, run_bench
    from bus.cli.app import console

    if mode not in ("threads", "asyncio"):
        raise typer.BadParameter("threads or asyncio", param_hint="--mode")
    try:
        levels = tuple(int(x) for x in clients.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter("comma-separated integers", param_hint="--clients") from None
    if not levels or min(levels) < 1:
        raise typer.BadParameter("at least one level, each ≥ 1", param_hint="--clients")
    url = amqp_url if amqp_url and amqp_url.startswith(("amqp://", "amqps://")) else None
    options = BenchOptions(
        requests=requests,
        quick=quick,
        concurrency=levels,
        only=tuple(only or ()),
        mode="asyncio" if mode == "asyncio" else "threads",
        amqp_url=url or DEFAULT_AMQP_URL,
        write=write,
        state_dir=state_dir,
        command=command_line(),
    )
    run_bench(options, console)
