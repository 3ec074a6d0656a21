"""The targets ``python -m bench`` checks (issue 13's), from made-up results."""

from __future__ import annotations

from bench.report import Cell, Result, check_targets


def result(system: str, transport: str, clients: int, rate: float, p50: float, cpu: float,
           baseline: str | None = None) -> Result:
    return Result(Cell(system, transport, clients, baseline), ok=100, errors=0, elapsed_s=1.0,
                  throughput=rate, p50_ms=p50, p99_ms=p50 * 2, cpu_ms={"server": cpu})


def test_each_target_is_judged_against_its_own_limit() -> None:
    lines = check_targets([
        result("floor http", "-", 1, 600, 1.3, 0.8),
        result("floor http", "-", 8, 1000, 8.0, 0.7),
        result("bus embedded", "embedded", 1, 400, 2.5, 1.4, "floor http"),
        result("bus embedded, workers", "embedded", 8, 700, 11.0, 1.6, "floor http"),
        result("floor pika", "rabbitmq", 1, 300, 2.4, 1.5),
        result("bus rabbitmq", "rabbitmq", 1, 100, 9.0, 2.4, "floor pika"),
        result("bus rabbitmq, 2 nodes", "rabbitmq", 8, 460, 17.0, 2.6, "floor pika"),
    ])  # fmt: skip
    text = "\n".join(lines)
    assert "bus embedded at 1 client(s): 1.40 ms: met" in text
    assert "bus embedded, workers at 8 client(s): 1.60 ms: MISSED" in text  # over 1.5
    assert "bus rabbitmq at 1 client(s): 2.40 ms: met" in text  # RabbitMQ's limit is 2.5
    assert "(1 client) — bus embedded: 67% of floor http (400 vs 600/s): met" in text
    assert "(8 clients, workers) — bus embedded, workers: 70% of floor http" in text
    assert text.count("MISSED") == 4  # workers CPU and share, 2 nodes' CPU, RabbitMQ's latency
    assert "bus embedded, 1 client: +1.20 ms over floor http (2.50 vs 1.30 ms): met" in text
    assert "bus rabbitmq, 1 client: +6.60 ms over floor pika" in text
    assert "best 460/s at 8 clients: met" in text


def test_the_bundle_is_judged_against_its_slowest_part_and_async_by_its_rate() -> None:
    lines = check_targets([
        result("bus bundle of 5", "embedded", 1, 18, 53.5, 4.0),
        result("bus bundle of 5", "embedded", 8, 120, 60.0, 4.0),
        result("bus async acceptance", "embedded", 1, 700, 1.4, 1.0),
        result("bus async acceptance", "embedded", 8, 1500, 5.0, 1.0),
    ])  # fmt: skip
    bundle = "bundle of 5 ≤ slowest part + 5 ms — p50 53.5 ms, +3.5 ms over its 50 ms part: met"
    assert bundle in lines
    assert ("async acceptance ≥ 2000 persisted requests/s — best 1500/s at 8 clients: MISSED"
            in lines)
