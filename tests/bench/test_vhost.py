"""The bench's RabbitMQ cells run in a virtual host of their own (``bench.vhost``)."""

from __future__ import annotations

import pika
import pytest

from bench.vhost import run_vhost, with_vhost
from tests.live import rabbitmqctl


def test_the_url_points_into_the_virtual_host_and_keeps_the_rest() -> None:
    url = "amqp://guest:s%40cret@10.0.0.5:5673/%2F?heartbeat=30"
    assert with_vhost(url, "bench-1-ab") == "amqp://guest:s%40cret@10.0.0.5:5673/bench-1-ab?heartbeat=30"
    assert with_vhost("amqp://h/", "a/b") == "amqp://h/a%2Fb"


@pytest.mark.rabbitmq
def test_the_virtual_host_is_usable_and_gone_afterwards() -> None:
    with run_vhost("amqp://guest:guest@127.0.0.1:5672/%2F") as (url, shared):
        assert shared is None
        vhost = pika.URLParameters(url).virtual_host
        assert vhost.startswith("bench-")
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            connection.channel().queue_declare("bench.vhost.probe", durable=True)
        finally:
            connection.close()
        assert vhost in rabbitmqctl("list_vhosts").split()
    assert vhost not in rabbitmqctl("list_vhosts").split()  # with the queue in it
