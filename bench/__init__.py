"""The benchmark harness: the bus against raw floors, and the demo's real path.

Run it as ``python -m bench`` or ``python run_bus.py bench`` (``--quick`` for about 30 s,
``--requests N``, ``--no-write``); it prints a table and writes ``bench/RESULTS.md``.

Modules: ``workload`` (the exchange and envelopes of the bus's shape), ``trivial_adapter`` (the
``bench-echo`` adapter kind, found by the bus through the ``bus.adapters`` entry point),
``floor`` (the raw baselines), ``bus_run`` (bench deployments and nodes), ``loadgen`` (clients,
in a separate process for HTTP), ``report`` (statistics, table, RESULTS.md), ``machine`` (the
machine, versions and commit a run records; whether the broker is usable), ``runner`` (one run)
and ``cli`` (the command). This package's ``__init__`` imports nothing, so loading the
adapter plugin stays cheap.
"""
