"""The benchmark harness: the bus against raw floors, and the demo's real path.

Run it as ``python -m bench`` or ``python run_bus.py bench`` (``--quick`` for about 30 s,
``--requests N``, ``--no-write``); it prints a table and writes ``bench/RESULTS.md``.

Modules: ``workload`` (the exchange and envelopes of the bus's shape), ``trivial_adapter`` (the
``bench-echo`` adapter kind, registered in the bench's own processes), ``serve`` (``run_bus.py
serve`` knowing that kind: the benchmark's node processes), ``floor`` (the raw baselines),
``bus_run`` (bench deployments and nodes), ``loadgen`` (clients, in a separate process for
HTTP), ``report`` (statistics, table, RESULTS.md), ``machine`` (the machine, versions and commit
a run records; whether the broker is usable), ``runner`` (one run) and ``cli`` (the command's
work). The package is not in the wheel: it runs from the repository's checkout.
"""
