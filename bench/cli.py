"""The ``bench`` command's work: ``python run_bus.py bench`` and ``python -m bench`` end here.

The options are declared once, on ``run_bus.bench`` (the command line's), and are:

``--requests N`` exchanges per cell, ``--quick`` (about 30 s), ``--write/--no-write``
``bench/RESULTS.md``, ``--clients 1,8,32``, ``--only NAME`` (repeatable; systems whose name
contains it), ``--mode threads|asyncio`` for the load generator, ``--amqp-url`` (or
``BUS_TRANSPORT__URL`` when it is an ``amqp://`` URL), ``--state-dir`` to keep keys and logs.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

__all__ = ["command_line", "run_bench_command"]


def command_line(argv: list[str] | None = None) -> str:
    """How this run was started, as the user would type it."""
    argv = list(sys.argv if argv is None else argv)
    prog = Path(argv[0]).name if argv else ""
    head = "python run_bus.py" if prog == "run_bus.py" else "python -m bench"
    return " ".join([head, *(shlex.quote(a) for a in argv[1:])])


def run_bench_command(
    *,
    requests: int | None,
    quick: bool,
    write: bool,
    clients: str,
    only: list[str] | None,
    mode: str,
    amqp_url: str | None,
    state_dir: Path | None,
) -> None:
    """The ``bench`` command's work, once typer has parsed its options (``run_bus.bench``)."""
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
