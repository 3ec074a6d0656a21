"""Adapter kind ``manual``: the operator inbox it files requests in, and its configuration."""

from __future__ import annotations

import stat
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters import AdapterContext, build_adapter
from adapters.manual import ManualAdapter, OperatorInbox, TaskClosed, Ticket
from bus.config import ServiceSettings
from bus.config_loader import ConfigError, load_settings
from schemas import BirthCertificate, BirthCertificateRequest

PINFL = "42203902740025"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def ticket(task_id: str = "t-1", expires_at: float = 1_800_003_600.0) -> Ticket:
    return Ticket(id=task_id, service="state-archive/archival-birth-record/v1", client="portal",
                  purpose="pension-assignment", user="officer-3", subject=PINFL,
                  envelope=b'{"signed": "request"}', reply_to="reply.node-1.async",
                  expires_at=expires_at)


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[OperatorInbox]:
    box = OperatorInbox(tmp_path / "inbox.db", clock=Clock())
    yield box
    box.close()


def test_a_request_delivered_twice_is_one_task(inbox: OperatorInbox) -> None:
    assert inbox.file(ticket(), {"pinfl": PINFL}) is True
    assert inbox.file(ticket(), {"pinfl": PINFL}) is False
    (task,) = inbox.tasks()
    assert (task.id, task.state, task.request, task.reply_to) == (
        "t-1", "open", {"pinfl": PINFL}, "reply.node-1.async")


def test_a_task_is_closed_once(inbox: OperatorInbox) -> None:
    inbox.file(ticket(), {"pinfl": PINFL})
    inbox.close_task("t-1", operator="a.karimova", outcome="ok", answer=b"signed answer")
    assert inbox.tasks() == [] and inbox.unsent() == []  # being closed: its audit entry next
    inbox.audited("t-1")
    assert [t.id for t in inbox.unsent()] == ["t-1"]
    with pytest.raises(TaskClosed, match="being delivered"):
        inbox.close_task("t-1", operator="b.aliyev", outcome="no-data", answer=b"other")
    inbox.sent("t-1")
    task = inbox.get("t-1")
    assert task is not None and (task.state, task.operator, task.answer) == (
        "answered", "a.karimova", b"signed answer")
    with pytest.raises(TaskClosed, match="answered"):
        inbox.close_task("t-1", operator="a.karimova", outcome="ok", answer=b"again")
    with pytest.raises(TaskClosed, match="no task"):
        inbox.close_task("nope", operator="a.karimova", outcome="ok", answer=b"x")


def test_what_is_sent_again_audited_ones_and_claims_left_behind(tmp_path: Path) -> None:
    clock = Clock()
    inbox = OperatorInbox(tmp_path / "inbox.db", clock=clock)
    for task_id in ("audited", "being-closed", "left-behind"):
        inbox.file(ticket(task_id), {"pinfl": PINFL})
    inbox.close_task("left-behind", operator="op", outcome="ok", answer=b"a")
    clock.now += 120  # its process stopped two minutes ago, before the audit entry
    inbox.close_task("audited", operator="op", outcome="ok", answer=b"b")
    inbox.audited("audited")
    inbox.close_task("being-closed", operator="op", outcome="ok", answer=b"c")  # just now
    assert sorted(t.id for t in inbox.unsent()) == ["audited", "left-behind"]
    inbox.sent("audited")
    assert [t.id for t in inbox.unsent()] == ["left-behind"]
    inbox.close()


def test_a_rejection_and_an_undone_claim(inbox: OperatorInbox) -> None:
    inbox.file(ticket("t-1"), {"pinfl": PINFL})
    inbox.file(ticket("t-2"), {"pinfl": PINFL})
    inbox.close_task("t-1", operator="op", outcome="no-data", answer=b"error")
    inbox.sent("t-1")
    inbox.close_task("t-2", operator="op", outcome="ok", answer=b"answer")
    inbox.reopen("t-2")  # the audit entry could not be written: open again, nothing kept
    states = {t.id: (t.state, t.answer) for t in inbox.tasks(states=("open", "rejected"))}
    assert states == {"t-1": ("rejected", b"error"), "t-2": ("open", None)}


def test_a_task_nobody_waits_for_any_more_expires(tmp_path: Path) -> None:
    clock = Clock()
    inbox = OperatorInbox(tmp_path / "inbox.db", clock=clock)
    inbox.file(ticket(expires_at=clock.now + 60), {"pinfl": PINFL})
    clock.now += 61
    assert inbox.tasks() == []
    with pytest.raises(TaskClosed, match="expired"):
        inbox.close_task("t-1", operator="op", outcome="ok", answer=b"late")
    assert [t.state for t in inbox.tasks(states=("expired",))] == ["expired"]
    inbox.close()


def test_the_adapter_files_into_the_node_folder_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    adapter = build_adapter("manual", {"instructions": "the 1990 books"}, AdapterContext(
        "state-archive/archival-birth-record/v1", BirthCertificateRequest, BirthCertificate,
        data_dir=tmp_path))
    assert isinstance(adapter, ManualAdapter)
    adapter.file(BirthCertificateRequest(pinfl=PINFL), ticket())
    path = tmp_path / "inbox.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [t.request for t in adapter.inbox.tasks()] == [{"pinfl": PINFL, "number": None}]
    adapter.close()


def _service(**overrides: object) -> ServiceSettings:
    return ServiceSettings.model_validate({
        "request": "schemas.civil.BirthCertificateRequest",
        "response": "schemas.civil.BirthCertificate",
        "adapter": {"kind": "manual"},
        **overrides,
    })


def test_a_manual_service_must_wait_for_a_person() -> None:
    with pytest.raises(ValidationError, match="waits for a person"):
        _service(timeout_s=5)
    assert _service(timeout_s=259200).async_only
    rest = _service(adapter={"kind": "rest"}, timeout_s=5)
    assert not rest.async_only and _service(adapter={"kind": "rest"}, timeout_s=3600).async_only
    with pytest.raises(ValidationError):
        _service(timeout_s=31 * 86400)  # at most 30 days


def test_an_operator_of_an_unknown_agency_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bus.yaml"
    path.write_text(textwrap.dedent("""\
        node: {hosts: []}
        transport: {url: "embedded://q.db"}
        inbox:
          operators:
            archivist:
              token_sha256: 83c5a360267dab042567bcc47d07a91ea08524c4f7010dc7bc032aa9e7a97385
              members: [state-archive]
        """))
    with pytest.raises(ConfigError) as info:
        load_settings(path, check_references=True)
    assert "inbox.operators.archivist.members: unknown member 'state-archive'" in str(info.value)
