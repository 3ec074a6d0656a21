"""``python -m bench``: the benchmark harness (the same command as ``python run_bus.py bench``)."""

from __future__ import annotations

import typer

from run_bus import bench


def main() -> None:
    typer.run(bench)


if __name__ == "__main__":
    main()
