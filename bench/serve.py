"""``python -m bench.serve -c CONFIG …``: ``run_bus.py serve`` with the ``bench-echo`` kind.

The benchmark's nodes (``bench.bus_run.serve_nodes``) answer with the trivial ``bench-echo``
adapter, which lives in this checkout, not in the installed bus: this module registers it
(``adapters.register_kind``) and then runs ``run_bus.py serve`` with the arguments given. It
registers at import, not under ``__main__``: ``serve --workers N`` spawns fresh interpreters,
and multiprocessing imports the parent's main module in each of them (as ``__mp_main__``)
before a worker starts, so every worker knows the kind too.
"""

from __future__ import annotations

import sys

from adapters import register_kind
from bench.trivial_adapter import EchoAdapter

__all__ = ["main"]

register_kind(EchoAdapter)


def main() -> None:
    from run_bus import main as run_bus_main

    sys.argv[1:1] = ["serve"]
    run_bus_main()


if __name__ == "__main__":
    main()
