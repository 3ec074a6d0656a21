"""``python -m bench``: the benchmark harness (the same command as ``python run_bus.py bench``)."""

from __future__ import annotations

import typer

from bench.cli import bench_command


def main() -> None:
    typer.run(bench_command)


if __name__ == "__main__":
    main()
