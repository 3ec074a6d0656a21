"""Statistics of the cells, the rich table, the targets, and ``bench/RESULTS.md``.

A ``Cell`` is one system at one concurrency; ``summarise`` turns its ``Sample`` into throughput
(successful exchanges per second of wall time) and nearest-rank percentiles of latency. Each bus
cell names its ``baseline`` floor; the table shows the ratio of throughputs (bus/floor) and the
added median latency (bus p50 minus floor p50) at the same concurrency.

``write_results`` regenerates everything in ``RESULTS.md`` above the line
``<!-- analysis: kept by the harness -->`` and keeps what follows it, so the hand-written
analysis (profiles, suggestions) survives re-runs.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.loadgen import Sample

__all__ = [
    "ANALYSIS_MARKER",
    "Cell",
    "Machine",
    "Result",
    "Targets",
    "check_targets",
    "percentile",
    "results_table",
    "summarise",
    "write_results",
]

ANALYSIS_MARKER = "<!-- analysis: kept by the harness -->"


@dataclass(frozen=True)
class Cell:
    """One measured system at one concurrency; ``baseline`` names the floor it is compared to."""

    system: str
    transport: str
    concurrency: int
    baseline: str | None = None
    shape: str | None = None  # the floor of the same shape (HTTP in front), if not the baseline
    peer: str | None = None  # what a team would build instead from common parts (bench.peer)
    note: str = ""


@dataclass(frozen=True)
class Result:
    cell: Cell
    ok: int
    errors: int
    elapsed_s: float
    throughput: float
    p50_ms: float
    p99_ms: float
    first_error: str | None = None
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per exchange, per role
    cores: float | None = None  # cores kept busy by the measured roles together
    machine_cores: float | None = None  # cores kept busy by every process on the machine


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0-100) of already sorted values; NaN if none."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarise(
    cell: Cell,
    sample: Sample,
    *,
    cpu_s: dict[str, float] | None = None,
    exchanges: int = 0,
    wall_s: float = 0.0,
) -> Result:
    """``cpu_s``: CPU seconds per role over ``wall_s`` seconds in which ``exchanges`` were made
    (warm-up included)."""
    values = sorted(sample.latencies)
    roles = {r: s for r, s in (cpu_s or {}).items() if r != "machine"}
    machine = (cpu_s or {}).get("machine")
    cpu_ms = {r: s * 1000 / exchanges for r, s in roles.items()} if exchanges else {}
    cores = sum(roles.values()) / wall_s if roles and wall_s > 0 else None
    machine_cores = machine / wall_s if machine is not None and wall_s > 0 else None
    throughput = len(values) / sample.elapsed if sample.elapsed > 0 else 0.0
    return Result(
        cell,
        ok=len(values),
        errors=sample.errors,
        elapsed_s=sample.elapsed,
        throughput=throughput,
        p50_ms=percentile(values, 50) * 1000,
        p99_ms=percentile(values, 99) * 1000,
        first_error=sample.first_error,
        cpu_ms=cpu_ms,
        cores=cores,
        machine_cores=machine_cores,
    )


def _baseline_of(
    result: Result, results: Iterable[Result], name: str | None = None
) -> Result | None:
    """The floor result ``result`` is compared with (its ``baseline``, or ``name``)."""
    name = name or result.cell.baseline
    if name is None:
        return None
    for other in results:
        if (
            other.cell.system == name
            and other.cell.concurrency == result.cell.concurrency
            and other.ok
            and not other.errors  # a floor that failed is no baseline
        ):
            return other
    return None


def _ratio(result: Result, base: Result | None) -> str:
    if base is None or not base.throughput:
        return "-"
    return f"{result.throughput / base.throughput:.0%}"


def _added(result: Result, base: Result | None) -> str:
    if base is None or not result.ok:
        return "-"
    return f"{result.p50_ms - base.p50_ms:+.2f}"


_COLUMNS = (
    "system",
    "transport",
    "clients",
    "ok",
    "errors",
    "exchanges/s",
    "p50 ms",
    "p99 ms",
    "baseline",
    "bus/floor",
    "added p50 ms",
    "bus/same-shape floor",
    "bus/peer",
    "CPU ms/exch srv/cli/mq",
    "cores ours/all",
)


def _same_shape(result: Result, results: Sequence[Result]) -> str:
    if result.cell.shape is None:
        return _ratio(result, _baseline_of(result, results))
    floor = _baseline_of(result, results, result.cell.shape)
    return _ratio(result, floor) + (f" ({result.cell.shape})" if floor else "")


def _peer_ratio(result: Result, results: Sequence[Result]) -> str:
    if result.cell.peer is None:
        return "-"
    return _ratio(result, _baseline_of(result, results, result.cell.peer))


def _cores(result: Result) -> str:
    ours = "-" if result.cores is None else f"{result.cores:.2f}"
    every = "-" if result.machine_cores is None else f"{result.machine_cores:.2f}"
    return f"{ours}/{every}"


def _cpu(result: Result) -> str:
    parts = [result.cpu_ms.get(r) for r in ("server", "client", "broker")]
    return "/".join("-" if p is None else f"{p:.2f}" for p in parts)


def _row(result: Result, results: Sequence[Result]) -> list[str]:
    base = _baseline_of(result, results)
    return [
        result.cell.system,
        result.cell.transport,
        str(result.cell.concurrency),
        str(result.ok),
        str(result.errors),
        f"{result.throughput:.0f}",
        f"{result.p50_ms:.2f}",
        f"{result.p99_ms:.2f}",
        result.cell.baseline or "-",
        _ratio(result, base),
        _added(result, base),
        _same_shape(result, results),
        _peer_ratio(result, results),
        _cpu(result),
        _cores(result),
    ]


def results_table(results: Sequence[Result], title: str = "Benchmark") -> Table:
    table = Table(title=title, title_justify="left")
    for name in _COLUMNS:
        table.add_column(
            name, justify="left" if name in ("system", "transport", "baseline") else "right"
        )
    for result in results:
        style = "red" if result.errors else ("bold" if result.cell.baseline else "")
        table.add_row(*_row(result, results), style=style)
    return table


def markdown_table(results: Sequence[Result]) -> str:
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "|".join("---" for _ in _COLUMNS) + "|"]
    for result in results:
        lines.append("| " + " | ".join(_row(result, results)) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Targets:
    """Issue 13's targets on this 2-core machine (``embedded``/``rabbitmq``: per transport)."""

    max_cpu_ms: tuple[float, float] = (1.5, 2.5)  # server CPU per exchange
    min_ratio_one_client: float = 0.60  # bus embedded / floor http, 1 client
    min_ratio_workers: float = 0.80  # bus embedded, workers / floor http, 8 clients
    max_added_p50_ms: tuple[float, float] = (1.5, 3.0)  # over the floor, 1 client
    min_two_node_rate: float = 450.0  # bus rabbitmq, 2 nodes, at 8-32 clients
    bundle_slowest_ms: float = 50.0  # the bundle cell's slowest part (bench.bus_run)
    max_bundle_over_ms: float = 5.0  # bundle of 5, 1 client: p50 over its slowest part
    min_async_rate: float = 2000.0  # persisted 202s per second


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def check_targets(results: Sequence[Result], targets: Targets = Targets()) -> list[str]:
    """One line per target: what was reached, against what, met or not (or not measured)."""
    lines: list[str] = []
    bus = [r for r in results if r.cell.baseline and r.cell.system.startswith("bus") and r.ok]
    for r in bus:  # CPU per exchange
        cpu = r.cpu_ms.get("server")
        if cpu is None:
            continue
        limit = targets.max_cpu_ms[r.cell.transport != "embedded"]
        lines.append(
            f"server CPU ≤ {limit:g} ms per exchange — {r.cell.system} at {r.cell.concurrency} "
            f"client(s): {cpu:.2f} ms: {_verdict(cpu <= limit)}"
        )
    for r in bus:  # share of the floor
        base = _baseline_of(r, results)
        if base is None or not base.throughput:
            continue
        if r.cell.system == "bus embedded" and r.cell.concurrency == 1:
            want, what = targets.min_ratio_one_client, "1 client"
        elif r.cell.system == "bus embedded, workers" and r.cell.concurrency == 8:
            want, what = targets.min_ratio_workers, "8 clients, workers"
        else:
            continue
        ratio = r.throughput / base.throughput
        lines.append(
            f"bus ≥ {want:.0%} of the floor ({what}) — {r.cell.system}: {ratio:.0%} of "
            f"{base.cell.system} ({r.throughput:.0f} vs {base.throughput:.0f}/s): "
            f"{_verdict(ratio >= want)}"
        )
    for r in bus:  # added latency
        if r.cell.concurrency != 1:
            continue
        base = _baseline_of(r, results)
        if base is None:
            continue
        limit = targets.max_added_p50_ms[r.cell.transport != "embedded"]
        added = r.p50_ms - base.p50_ms
        lines.append(
            f"added median latency ≤ {limit:g} ms — {r.cell.system}, 1 client: {added:+.2f} ms "
            f"over {base.cell.system} ({r.p50_ms:.2f} vs {base.p50_ms:.2f} ms): "
            f"{_verdict(added <= limit)}"
        )
    for r in results:
        if r.cell.system == "bus bundle of 5" and r.cell.concurrency == 1 and r.ok:
            over = r.p50_ms - targets.bundle_slowest_ms
            lines.append(
                f"bundle of 5 ≤ slowest part + {targets.max_bundle_over_ms:g} ms — p50 "
                f"{r.p50_ms:.1f} ms, {over:+.1f} ms over its {targets.bundle_slowest_ms:g} ms "
                f"part: {_verdict(over <= targets.max_bundle_over_ms)}"
            )
    accepted = [r for r in results if r.cell.system == "bus async acceptance" and r.ok]
    if accepted:
        best = max(accepted, key=lambda r: r.throughput)
        lines.append(
            f"async acceptance ≥ {targets.min_async_rate:.0f} persisted requests/s — best "
            f"{best.throughput:.0f}/s at {best.cell.concurrency} clients: "
            f"{_verdict(best.throughput >= targets.min_async_rate)}"
        )
    two = [r for r in results if "2 nodes" in r.cell.system and r.ok and r.cell.concurrency >= 8]
    rate = targets.min_two_node_rate
    if two:
        best = max(two, key=lambda r: r.throughput)
        lines.append(
            f"≥ {rate:.0f} signed exchanges/s with 2 nodes at 8-32 clients — best "
            f"{best.throughput:.0f}/s at {best.cell.concurrency} clients: "
            f"{_verdict(best.throughput >= rate)}"
        )
    else:
        lines.append(f"≥ {rate:.0f} signed exchanges/s with 2 nodes — not measured in this run")
    return lines


@dataclass
class Machine:
    """Facts about where and how the run happened."""

    command: str
    date: str
    nproc: int
    python: str = field(default_factory=platform.python_version)
    cpu: str = ""
    kernel: str = field(default_factory=platform.release)
    versions: dict[str, str] = field(default_factory=dict)
    load_before: str = ""
    load_after: str = ""
    code: str = ""
    notes: list[str] = field(default_factory=list)


def _existing_analysis(path: Path) -> str:
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8")
    at = text.find(ANALYSIS_MARKER)
    return text[at:] if at >= 0 else ""


def write_results(
    path: Path,
    results: Sequence[Result],
    machine: Machine,
    *,
    method: str,
    targets: list[str],
) -> None:
    """Write ``RESULTS.md``: command, date, machine, method, the table and the targets."""
    versions = ", ".join(f"{k} {v}" for k, v in machine.versions.items())
    parts = [
        "# Benchmark results",
        "",
        "Generated by the benchmark harness (`bench/`); everything above the analysis marker is",
        "rewritten on every `--write` run.",
        "",
        f"* command: `{machine.command}`",
        f"* date: {machine.date}",
        f"* machine: {machine.nproc} cores (`nproc`), {machine.cpu or 'CPU unknown'}, "
        f"Linux {machine.kernel}",
        f"* Python {machine.python}; {versions}",
        f"* code: {machine.code or 'unknown'}",
        f"* load average (1, 5, 15 min) before the run: {machine.load_before}; after: "
        f"{machine.load_after}",
        "",
        "## Method",
        "",
        method.strip(),
        "",
        "## Results",
        "",
        markdown_table(results),
        "",
        "`bus/floor` is the bus's throughput as a share of its baseline floor's at the same",
        "number of clients; `added p50 ms` is the bus's median latency minus the floor's;",
        "`bus/same-shape floor` compares with the floor that has the bus's shape (HTTP in front",
        "of the same transport: `floor http+pika` for RabbitMQ, `floor http` for embedded);",
        "`bus/peer` with what a team would write instead (`peer fastapi+aio-pika`).",
        "`CPU ms/exch srv/cli/mq`: CPU time (user + system, all threads, from `/proc`) per",
        "exchange of the server process(es), the load generator and RabbitMQ, warm-up included;",
        "`cores ours/all`: cores those kept busy during the cell, and cores every process on the",
        "machine kept busy (the difference is other work on the machine).",
        "",
    ]
    errors = [r for r in results if r.first_error]
    if errors:
        parts += ["Errors seen:", ""]
        parts += [
            f"* {r.cell.system}, {r.cell.concurrency} client(s): {r.first_error}" for r in errors
        ]
        parts.append("")
    parts += ["## Targets", ""]
    parts += [f"* {line}" for line in targets]
    parts.append("")
    if machine.notes:
        parts += ["## Notes on this run", ""]
        parts += [f"* {note}" for note in machine.notes]
        parts.append("")
    analysis = _existing_analysis(path) or ANALYSIS_MARKER + "\n"
    path.write_text("\n".join(parts) + "\n" + analysis, encoding="utf-8")


def print_result(console: Console, result: Result, results: Sequence[Result]) -> None:
    """One line per finished cell, while the run goes on."""
    row = dict(zip(_COLUMNS, _row(result, results), strict=True))
    error = f"  [red]{result.first_error}[/red]" if result.first_error else ""
    console.print(
        f"  {row['system']:<34} {row['clients']:>2} client(s): {row['exchanges/s']:>6}/s  "
        f"p50 {row['p50 ms']:>6} ms  p99 {row['p99 ms']:>7} ms  "
        f"errors {row['errors']}  bus/floor {row['bus/floor']} "
        f"(same shape {row['bus/same-shape floor']}, peer {row['bus/peer']})  "
        f"CPU ms {row['CPU ms/exch srv/cli/mq']}  cores {row['cores ours/all']}{error}",
        highlight=False,
    )
