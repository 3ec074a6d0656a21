"""``run_bus.py status``: a node's live picture in the terminal, read from its ``/metrics``.

Two scrapes ``interval`` seconds apart give the rates (``--interval 0``: one scrape, no rates);
counts and latency percentiles are since the node started. The tables: the node (build,
readiness and its failing checks, transport), services (asked and served per second, answers,
refusals, errors, p50/p99, in flight, queue depth and consumers, breaker), outcomes other than
``ok`` by code, providers (adapter calls, errors by kind, retries, probe, breaker), and the
dead letters, retrying messages, signature failures and access refusals. Only ``/metrics`` and
``/health/ready`` are read: the command needs no key, token or transport access.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from bus.core.errors import RequestRefused

__all__ = ["Scrape", "fetch", "render"]

Labels = frozenset[tuple[str, str]]
_ANSWERS = {"ok", "no-data"}
_REFUSALS = {RequestRefused.code} | {c.code for c in RequestRefused.__subclasses__()}
_BREAKER = {0: "closed", 1: "half-open", 2: "open"}


@dataclass
class Scrape:
    """One scrape of ``/metrics``: samples by name, each a map of label set to value."""

    at: float
    samples: dict[str, dict[Labels, float]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, at: float) -> Scrape:
        scrape = cls(at)
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                scrape.samples.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
        return scrape

    def rows(self, name: str) -> Iterable[tuple[dict[str, str], float]]:
        for labels, value in self.samples.get(name, {}).items():
            yield dict(labels), value

    def total(self, name: str, **match: str) -> float:
        return sum(v for labels, v in self.rows(name) if _matches(labels, match))

    def value(self, name: str, **match: str) -> float | None:
        found = [v for labels, v in self.rows(name) if _matches(labels, match)]
        return found[0] if found else None


def _matches(labels: dict[str, str], match: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in match.items())


def fetch(base_url: str, *, timeout: float = 5.0) -> Scrape:
    r = httpx.get(base_url.rstrip("/") + "/metrics", timeout=timeout)
    r.raise_for_status()
    return Scrape.parse(r.text, time.monotonic())


def fetch_readiness(base_url: str, *, timeout: float = 5.0) -> list[dict[str, object]] | None:
    try:
        r = httpx.get(base_url.rstrip("/") + "/health/ready", timeout=timeout)
        checks = r.json().get("checks")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return checks if isinstance(checks, list) else None


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """``histogram_quantile`` over cumulative ``(upper bound, count)`` buckets."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            share = (rank - lower_count) / (count - lower_count)
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return None


def _latency(scrape: Scrape, service: str, q: float) -> str:
    buckets = [
        (float(labels["le"]), value)
        for labels, value in scrape.rows("bus_exchange_duration_seconds_bucket")
        if labels.get("service") == service
    ]
    seconds = quantile(q, buckets)
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _rate(now: Scrape, before: Scrape | None, name: str, **match: str) -> str:
    if before is None:
        return "-"
    elapsed = now.at - before.at
    if elapsed <= 0:
        return "-"
    return f"{(now.total(name, **match) - before.total(name, **match)) / elapsed:.1f}"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _breaker(scrape: Scrape, service: str) -> str:
    state = scrape.value("bus_circuit_state", service=service)
    return "-" if state is None else _BREAKER.get(int(state), f"{state:g}")


def _node(scrape: Scrape, checks: list[dict[str, object]] | None) -> Table:
    build = next((labels for labels, _ in scrape.rows("bus_build_info")), {})
    ready = scrape.value("bus_ready")
    table = Table(title="Node", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("node", f"{build.get('node', '?')} (bus {build.get('version', '?')})")
    table.add_row(
        "ready",
        Text("ready", "green") if ready == 1 else Text("NOT READY", "bold red"),
    )
    for check in checks or []:
        if not check.get("ok"):
            table.add_row("", Text(f"{check.get('name')}: {check.get('detail')}", "red"))
    connected = scrape.value("bus_transport_connected")
    table.add_row(
        "transport",
        f"{build.get('transport', '?')}, "
        + ("connected" if connected == 1 else "[red]not connected[/red]"),
    )
    table.add_row(
        "dead letters / retrying",
        f"{_count(scrape.value('bus_dead_letter_messages'))} / "
        f"{_count(scrape.value('bus_retry_queue_messages'))}",
    )
    return table


def _services(scrape: Scrape, before: Scrape | None) -> Table:
    names = sorted(
        {labels["service"] for labels, _ in scrape.rows("bus_exchanges_total")}
        | {labels["service"] for labels, _ in scrape.rows("bus_provider_requests_total")}
        | {labels["service"] for labels, _ in scrape.rows("bus_queue_depth_messages")}
    )
    table = Table(title="Services", title_justify="left")
    for column in (
        "service", "asked/s", "served/s", "answered", "refused", "errors", "p50", "p99",
        "in flight", "queue", "consumers", "breaker",
    ):  # fmt: skip
        table.add_column(column, justify="left" if column == "service" else "right")
    for service in names:
        outcomes: dict[str, float] = defaultdict(float)
        for labels, value in scrape.rows("bus_exchanges_total"):
            if labels.get("service") == service:
                outcomes[labels["outcome"]] += value
        answered = sum(v for o, v in outcomes.items() if o in _ANSWERS)
        refused = sum(v for o, v in outcomes.items() if o in _REFUSALS)
        errors = sum(v for o, v in outcomes.items() if o not in _ANSWERS | _REFUSALS)
        consumers = scrape.value("bus_queue_consumers", service=service)
        table.add_row(
            service,
            _rate(scrape, before, "bus_exchanges_total", service=service),
            _rate(scrape, before, "bus_provider_requests_total", service=service),
            f"{answered:g}",
            f"{refused:g}",
            Text(f"{errors:g}", "red" if errors else ""),
            _latency(scrape, service, 0.5),
            _latency(scrape, service, 0.99),
            _count(scrape.value("bus_inflight_requests", service=service)),
            _count(scrape.value("bus_queue_depth_messages", service=service)),
            Text(_count(consumers), "red" if consumers == 0 else ""),
            _breaker(scrape, service) if service != "-" else "-",
        )
    return table


def _outcomes(scrape: Scrape, before: Scrape | None) -> Table | None:
    rows = sorted(
        (labels["service"], labels["outcome"], labels.get("client", "-"), value)
        for labels, value in scrape.rows("bus_exchanges_total")
        if labels.get("outcome") != "ok" and value
    )
    if not rows:
        return None
    table = Table(title="Outcomes other than ok (since start)", title_justify="left")
    for column in ("service", "outcome", "client", "count", "per s"):
        table.add_column(column, justify="right" if column in ("count", "per s") else "left")
    for service, outcome, client, value in rows:
        style = "" if outcome in _ANSWERS | _REFUSALS else "red"
        table.add_row(
            service,
            Text(outcome, style),
            client,
            f"{value:g}",
            _rate(
                scrape, before, "bus_exchanges_total",
                service=service, outcome=outcome, client=client,
            ),
        )  # fmt: skip
    return table


def _providers(scrape: Scrape, before: Scrape | None) -> Table | None:
    keys = sorted(
        (labels["provider"], labels["service"])
        for name in ("bus_adapter_calls_total", "bus_provider_up")
        for labels, _ in scrape.rows(name)
    )
    keys = sorted(set(keys))
    if not keys:
        return None
    table = Table(title="Providers (adapter calls since start)", title_justify="left")
    for column in ("provider", "service", "calls/s", "calls", "errors by kind", "retries", "up",
                   "breaker"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("provider", "service") else "right")
    for provider, service in keys:
        match = {"provider": provider, "service": service}
        errors = [
            f"{labels['kind']} {value:g}"
            for labels, value in scrape.rows("bus_adapter_errors_total")
            if _matches(labels, match) and value
        ]
        up = scrape.value("bus_provider_up", **match)
        table.add_row(
            provider,
            service,
            _rate(scrape, before, "bus_adapter_calls_total", **match),
            f"{scrape.total('bus_adapter_calls_total', **match):g}",
            Text(", ".join(errors) or "0", "red" if errors else ""),
            f"{scrape.total('bus_adapter_retries_total', **match):g}",
            "-" if up is None else Text("up" if up == 1 else "DOWN", "green" if up == 1 else "red"),
            _breaker(scrape, service),
        )
    return table


def _refusals(scrape: Scrape) -> Table | None:
    rows = [
        ("signature", labels["side"], labels["service"], labels["reason"], value)
        for labels, value in scrape.rows("bus_signature_failures_total")
        if value
    ] + [
        ("access", labels["side"], labels["service"], labels["reason"], value)
        for labels, value in scrape.rows("bus_access_refusals_total")
        if value
    ]
    if not rows:
        return None
    table = Table(
        title="Signature failures and access refusals (since start)", title_justify="left"
    )
    for column in ("what", "side", "service", "reason", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    totals: dict[tuple[str, str, str, str], float] = defaultdict(float)
    for what, side, service, reason, value in rows:
        totals[(what, side, service, reason)] += value
    for (what, side, service, reason), value in sorted(totals.items()):
        table.add_row(what, side, service, reason, f"{value:g}")
    return table


def _inbox(scrape: Scrape) -> Table | None:
    """The operator inbox: tasks waiting per manual service, the oldest, the most urgent."""
    rows = sorted((labels["service"], value) for labels, value in
                  scrape.rows("bus_inbox_open_tasks") if value)
    if not rows:
        return None
    table = Table(title="Operator inbox (tasks waiting for an official)", title_justify="left")
    for column in ("service", "open", "oldest", "first expires in"):
        table.add_column(column, justify="left" if column == "service" else "right")
    for service, count in rows:
        oldest = scrape.value("bus_inbox_oldest_task_seconds", service=service)
        left = scrape.value("bus_inbox_time_left_seconds", service=service)
        table.add_row(service, f"{count:g}", _duration(oldest), _duration(left))
    return table


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def render(
    scrape: Scrape, before: Scrape | None = None, checks: list[dict[str, object]] | None = None
) -> Group:
    parts = [
        _node(scrape, checks),
        _services(scrape, before),
        _outcomes(scrape, before),
        _providers(scrape, before),
        _refusals(scrape),
        _inbox(scrape),
    ]
    return Group(*(p for p in parts if p is not None))


def show(console: Console, base_url: str, *, interval: float) -> None:
    """Scrape (twice, ``interval`` s apart, for rates) and print the tables."""
    before = None
    if interval > 0:
        before = fetch(base_url)
        time.sleep(interval)
    scrape = fetch(base_url)
    console.print(render(scrape, before, fetch_readiness(base_url)))
    when = f"rates over {interval:g} s; " if before is not None else ""
    console.print(f"[dim]{base_url}: {when}counts and percentiles since the node started[/dim]")
