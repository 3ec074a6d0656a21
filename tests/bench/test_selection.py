"""``python -m bench --only``: which systems a run measures."""

from __future__ import annotations

from bench.runner import SYSTEMS, BenchOptions, _selected


def names(*only: str) -> list[str]:
    return [s.name for s in _selected(BenchOptions(only=only))]


def test_a_whole_name_picks_that_system_alone() -> None:
    assert names("floor http") == ["floor http"]  # not "floor http+pika", which needs RabbitMQ
    assert names("bus embedded", "floor http") == ["floor http", "bus embedded"]


def test_other_text_picks_every_name_containing_it() -> None:
    assert names("rabbitmq") == ["bus rabbitmq", "bus rabbitmq, 2 nodes"]
    assert names("rabbitmq", "peer") == [
        "peer fastapi+aio-pika",
        "peer fastapi+aio-pika, 2 processes",
        "bus rabbitmq",
        "bus rabbitmq, 2 nodes",
    ]
    assert names("peer fastapi+aio-pika") == ["peer fastapi+aio-pika"]
    assert names() == [s.name for s in SYSTEMS]
