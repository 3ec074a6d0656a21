"""A plain pika connection and ``rabbitmqctl`` for looking at the broker behind the RabbitMQ
transport's back, in this run's own virtual host (``tests.live``)."""

from __future__ import annotations

import json
import re
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from bus.transport.rabbitmq.topology import DLQ
from tests.live import AMQP_URL, rabbitmqctl

__all__ = ["URL", "Broker", "close_connections", "queue_info"]

URL = AMQP_URL


class Broker:
    """A plain pika connection for looking at the broker behind the transport's back."""

    def __init__(self) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(URL))
        self.channel = self.connection.channel()
        self.queues: list[str] = []

    def fresh(self) -> BlockingChannel:
        if not self.channel.is_open:
            self.channel = self.connection.channel()
        return self.channel

    def exists(self, queue: str) -> bool:
        try:
            self.fresh().queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return False
        return True

    def get(self, queue: str) -> tuple[pika.BasicProperties, bytes] | None:
        method, properties, body = self.fresh().basic_get(queue, auto_ack=True)
        return None if method is None else (properties, body)

    def find_dead_letter(self, message_id: str) -> pika.BasicProperties | None:
        """The headers of a message in bus.dlq, leaving the queue as it was."""
        channel = self.connection.channel()
        try:
            while True:
                method, properties, _ = channel.basic_get(DLQ, auto_ack=False)
                if method is None:
                    return None
                if properties.message_id == message_id:
                    return properties
        finally:
            channel.close()  # everything it holds goes back

    def close(self) -> None:
        channel = self.fresh()
        for queue in self.queues:
            channel.queue_delete(queue)
        self.connection.close()


def queue_info(name: str) -> dict[str, Any]:
    rows = json.loads(
        rabbitmqctl("list_queues", "name", "type", "arguments", "--formatter", "json", vhost=True)
    )
    [row] = [r for r in rows if r["name"] == name]
    row["arguments"] = {key: value for key, _type, value in row["arguments"]}
    return dict(row)


def close_connections(prefix: str) -> int:
    """Make the broker drop the transport's connections (as a broker restart would)."""
    closed = 0
    for line in rabbitmqctl("list_connections", "pid", "client_properties").splitlines():
        name = re.search(r'\{"connection_name","([^"]*)"\}', line)
        if name and name.group(1).startswith(prefix):
            rabbitmqctl("close_connection", line.split("\t")[0], "test: broker went away")
            closed += 1
    return closed

