"""The results table's comparisons: each bus row against its floor, its same-shape floor and
the peer (what a team would write instead), at the same number of clients."""

from __future__ import annotations

from bench.report import Cell, Result, markdown_table


def result(cell: Cell, rate: float, errors: int = 0) -> Result:
    return Result(cell, ok=100, errors=errors, elapsed_s=1.0, throughput=rate, p50_ms=2.0,
                  p99_ms=4.0)


def rows(results: list[Result]) -> dict[tuple[str, str], dict[str, str]]:
    header, _rule, *lines = markdown_table(results).splitlines()
    names = [c.strip() for c in header.strip("|").split("|")]
    table = [dict(zip(names, (c.strip() for c in line.strip("|").split("|")), strict=True))
             for line in lines]
    return {(row["system"], row["clients"]): row for row in table}


def test_a_bus_row_is_compared_with_the_peer_at_the_same_number_of_clients() -> None:
    peer = "peer fastapi+aio-pika"
    bus = Cell("bus rabbitmq", "rabbitmq", 1, "floor pika", "floor http+pika", peer)
    table = rows([
        result(Cell("floor pika", "rabbitmq", 1), 400),
        result(Cell(peer, "rabbitmq", 1), 200),
        result(Cell(peer, "rabbitmq", 8), 300),
        result(bus, 150),
        result(Cell("bus rabbitmq", "rabbitmq", 8, "floor pika", None, peer), 150),
        result(Cell("bus embedded", "embedded", 1, "floor http"), 100),
    ])  # fmt: skip
    assert table["bus rabbitmq", "1"]["bus/peer"] == "75%"
    assert table["bus rabbitmq", "1"]["bus/floor"] == "38%"
    assert table["bus rabbitmq", "8"]["bus/peer"] == "50%"
    assert table["bus embedded", "1"]["bus/peer"] == "-"  # no peer named
    assert table[peer, "1"]["bus/peer"] == "-"


def test_a_peer_with_errors_is_no_comparison() -> None:
    peer = "peer fastapi+aio-pika"
    table = rows([
        result(Cell(peer, "rabbitmq", 1), 200, errors=3),
        result(Cell("bus rabbitmq", "rabbitmq", 1, "floor pika", None, peer), 150),
    ])  # fmt: skip
    assert table["bus rabbitmq", "1"]["bus/peer"] == "-"
