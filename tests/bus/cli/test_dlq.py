"""``run_bus.py dlq list|show|replay|purge`` over both transports, as an operator uses it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bus.cli.app import DEMO_MEMBERS, app, new_token
from bus.config.loader import load_settings
from bus.core.envelope import Envelope, Kind, new_id, utcnow
from bus.records.audit import AuditRecord, open_audit_store
from bus.transport import Delivery, Message, Transport, open_transport
from demo.data import AZIZ
from demo.scenario import write_config
from signing import generate_member_key
from tests.live import AMQP_URL as AMQP


@pytest.fixture(params=["embedded", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def config(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    path = write_config(
        tmp_path,
        residence_url="http://127.0.0.1:9",
        cadastre_db=tmp_path / "c.db",
        token_sha256=new_token()[1],
    )
    if request.param == "rabbitmq":
        monkeypatch.setenv("BUS_TRANSPORT__URL", AMQP)
    return path


@pytest.fixture
def transport(config: Path) -> Iterator[Transport]:
    settings = load_settings(config)
    t = open_transport(settings.transport_url(), node=f"test-{uuid.uuid4().hex[:6]}")
    yield t
    t.close()


def _dead_letter(transport: Transport, queue: str) -> tuple[str, str]:
    """Publish a signed-looking envelope about AZIZ on ``queue`` and dead-letter it."""
    now = utcnow()
    envelope = Envelope(
        id=new_id(),
        correlation=new_id(),
        client="portal",
        service="residence-registry/residence-registration/v1",
        user="officer-17",
        purpose="child-benefit",
        subject=AZIZ.pinfl,
        issued_at=now,
        expires_at=now.replace(year=now.year + 1),
        kind=Kind.request,
        payload={"pinfl": AZIZ.pinfl},
    )
    transport.declare(queue)
    transport.publish(queue, Message(body=envelope.to_json(), message_id=envelope.id))
    done = threading.Event()

    def fail(delivery: Delivery) -> None:
        delivery.dead_letter("provider-rejected")
        done.set()

    sub = transport.consume(queue, fail, prefetch=1)
    assert done.wait(10)
    sub.cancel()
    letter = next(d for d in transport.dead_letters(10_000) if d.message.message_id == envelope.id)
    return letter.id, envelope.id


def test_list_show_replay_purge(config: Path, transport: Transport) -> None:
    runner = CliRunner()
    queue = f"svc.test.dlq-{uuid.uuid4().hex[:8]}"
    letter_id, message_id = _dead_letter(transport, queue)

    listed = runner.invoke(app, ["dlq", "list", "--config", str(config), "--limit", "10000"])
    assert listed.exit_code == 0, listed.output
    assert letter_id in listed.output and "provider-rejected" in listed.output

    shown = runner.invoke(app, ["dlq", "show", letter_id, "--config", str(config)])
    assert shown.exit_code == 0, shown.output
    assert message_id in shown.output and queue in shown.output
    assert AZIZ.pinfl not in shown.output  # subject masked, payload never shown
    assert "31**********13" in shown.output

    replayed = runner.invoke(app, ["dlq", "replay", letter_id, "--config", str(config)])
    assert replayed.exit_code == 0, replayed.output
    assert all(d.id != letter_id for d in transport.dead_letters(10_000))
    got: list[str] = []
    done = threading.Event()

    def take(delivery: Delivery) -> None:
        got.append(delivery.message.message_id)
        delivery.dead_letter("provider-rejected")
        done.set()

    sub = transport.consume(queue, take, prefetch=1)
    assert done.wait(10)
    sub.cancel()
    assert got == [message_id]  # back on its queue with its original id

    again = next(d for d in transport.dead_letters(10_000) if d.message.message_id == message_id)
    purged = runner.invoke(app, ["dlq", "purge", again.id, "--config", str(config)])
    assert purged.exit_code == 0 and "purged 1" in purged.output
    assert all(d.message.message_id != message_id for d in transport.dead_letters(10_000))


def test_unknown_dead_letter_is_a_clear_error(config: Path) -> None:
    runner = CliRunner()
    for command in (["show", "no-such-id"], ["replay", "no-such-id"], ["purge", "no-such-id"]):
        result = runner.invoke(app, ["dlq", *command, "--config", str(config)])
        assert result.exit_code == 1
        assert "no dead letter 'no-such-id'" in result.output


def test_purge_needs_an_id_or_all(config: Path) -> None:
    result = CliRunner().invoke(app, ["dlq", "purge", "--config", str(config)])
    assert result.exit_code == 2


def _row(output: str, letter_id: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(f"│ {letter_id} "))


def test_list_says_whether_the_request_was_executed(config: Path, transport: Transport) -> None:
    """Two dead letters look alike; the audit log has the provider's answer to one of them
    (executed, then its ack lost and the broker expired it): ``executed`` tells them apart."""
    queue = f"svc.test.dlq-{uuid.uuid4().hex[:8]}"
    ran_id, ran_message = _dead_letter(transport, queue)
    idle_id, _ = _dead_letter(transport, queue)
    settings = load_settings(config)
    assert settings.audit.url is not None
    store = open_audit_store(settings.audit.url.get_secret_value(), table=settings.audit.table)
    try:
        store.append([AuditRecord(
            message_id=ran_message, correlation=ran_message, client="portal",
            provider="residence-registry", service="residence-registry/residence-registration/v1",
            user="officer-17", purpose="child-benefit", subject=None, outcome="ok",
            side="provider", requested_at=utcnow().isoformat(), response_digest="0" * 64)])
    finally:
        store.close()
    listed = CliRunner().invoke(
        app, ["dlq", "list", "--config", str(config), "--limit", "10000"], terminal_width=250
    )
    assert listed.exit_code == 0, listed.output
    assert "executed" in listed.output
    assert _row(listed.output, ran_id).rstrip(" │").endswith("yes")
    assert _row(listed.output, idle_id).rstrip(" │").endswith("no")
