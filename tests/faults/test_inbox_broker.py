"""An operator answers while the broker is down: the signed answer is kept with the task and
delivered by the node once RabbitMQ is back; the asker gets it (nothing lost)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

import bus.inbox.desk
from bus.cli.app import DEMO_MEMBERS, new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.node.wiring import Node
from demo.archive import ARCHIVE, poll_result, wait_for_task
from demo.data import ARCHIVE_BIRTHS, birth_certificate
from demo.scenario import verify_answer, write_config
from demo.servers import serve_in_thread
from signing import generate_member_key
from tests.faults.test_broker_restart import _rabbitmqctl, _wait_for_broker
from tests.live import AMQP_URL as AMQP

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


def test_an_answer_given_while_the_broker_is_down_is_delivered_once_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bus.inbox.desk, "RESEND_EVERY_S", 0.5)
    monkeypatch.setenv("BUS_TRANSPORT__URL", AMQP)
    monkeypatch.setenv("BUS_NODE__NAME", f"test-inbox-broker-{uuid.uuid4().hex[:8]}")
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    config = write_config(tmp_path, residence_url="http://127.0.0.1:9",
                          cadastre_db=tmp_path / "c.db", token_sha256=digest)
    record = ARCHIVE_BIRTHS[0]
    node = Node(load_settings(config))
    headers = {"Authorization": f"Bearer {token}", "X-Bus-User": "pension-officer-3",
               "X-Bus-Purpose": "pension-assignment"}
    with serve_in_thread(create_app(node)) as server, \
            httpx.Client(base_url=server.url, headers=headers, timeout=10) as portal:
        r = portal.post(f"/v1/services/{ARCHIVE}", params={"mode": "async"},
                        json={"pinfl": record.pinfl})
        assert r.status_code == 202
        task_id, location = r.headers["X-Bus-Message-Id"], r.headers["Location"]
        desk = node.inbox
        assert desk is not None
        wait_for_task(desk, task_id)
        try:
            _rabbitmqctl("stop_app")
            began = time.monotonic()
            closed = desk.answer(task_id, birth_certificate(record).model_dump(mode="json"),
                                 operator="a.karimova")
            assert not closed.delivered  # kept: the broker refused it
            # told after the desk's short wait, not the 30 s a provider's reply may wait
            assert time.monotonic() - began < bus.inbox.desk.PUBLISH_TIMEOUT_S + 5
            assert portal.get(location).status_code == 202
        finally:
            _rabbitmqctl("start_app")
            _wait_for_broker()
        done = poll_result(portal, location, timeout_s=60)
        assert done.status_code == 200, done.text
        assert verify_answer(done.json(), tmp_path / "keys" / "state-archive.pub",
                             "state-archive")
        assert [t.id for t in desk.tasks(states=("answered",))] == [task_id]
