"""Retention: signed answers purged (their numbers stay), asynchronous results deleted, the
purge thread of a node, and ``run_bus.py documents purge``."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bus.cli.app import app
from bus.config.settings import BusSettings
from bus.core.envelope import new_id
from bus.core.seal import Seal
from bus.records.async_results import MessageStore
from bus.records.documents import DocumentStore, public_view, status
from bus.records.retention import Purged, Retention, messages_path, purge
from tests.bus.records.test_documents import PINFL, Clock, answer
from tests.signing.pki import T0

DAY = dt.timedelta(days=1)


def settings(documents: int | None = 30, messages: int | None = 7) -> BusSettings:
    return BusSettings(
        documents={"retention_days": documents}, messages={"retention_days": messages}
    )


def store_with(path: Path, clock: Clock, *ages_days: int) -> tuple[DocumentStore, list[str]]:
    """A store with one document recorded ``age`` days before T0 for each age."""
    store = DocumentStore(path, clock=clock)
    numbers = []
    for age in ages_days:
        clock.now = T0 - age * DAY
        numbers.append(store.issue(answer(), message_id=new_id()).number)
    clock.now = T0
    return store, numbers


def test_a_purged_answer_goes_and_its_number_stays(tmp_path: Path) -> None:
    clock = Clock()
    store, (old, recent) = store_with(tmp_path / "d.db", clock, 40, 10)
    before = store.get(old)
    assert store.purge(T0 - 30 * DAY) == 1
    assert store.purge(T0 - 30 * DAY) == 0  # once
    gone = store.get(old)
    assert gone.purged and gone.envelope == b"" and gone.purged_at == T0.isoformat()
    assert gone.fingerprint == before.fingerprint  # still comparable with the paper
    assert (gone.number, gone.service, gone.client, gone.issued_at, gone.message_id) == (
        before.number, before.service, before.client, before.issued_at, before.message_id)
    assert store.get(recent) == store.get(recent) and not store.get(recent).purged
    st = status(Seal({}, None), gone)  # type: ignore[arg-type]  # never asked: nothing to verify
    assert st.state == "purged" and not st.valid and "retention" in st.detail
    view = public_view(gone, st)
    assert view["purged_at"] == T0.isoformat() and view["fingerprint"] == before.fingerprint
    store.close()


def test_purged_answers_leave_no_trace_in_the_file(tmp_path: Path) -> None:
    clock = Clock()
    store, _ = store_with(tmp_path / "d.db", clock, 40, 40, 40)
    store.purge(T0)
    store.close()  # the last connection: the WAL is checkpointed into the file
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("d.db"))
    assert PINFL.encode() not in data and b"Aziz" not in data  # secure_delete


def test_purge_works_in_batches_and_stops_when_asked(tmp_path: Path) -> None:
    clock = Clock()
    store, numbers = store_with(tmp_path / "d.db", clock, *([50] * 7))
    assert store.purge(T0, batch=3, going=lambda: False) == 0
    assert store.purge(T0, batch=3) == 7
    assert all(store.get(n).purged for n in numbers)
    store.close()


def test_a_file_from_before_retention_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE counters (year INTEGER PRIMARY KEY, last INTEGER NOT NULL);
        CREATE TABLE documents (
            number TEXT PRIMARY KEY, service TEXT NOT NULL, provider TEXT NOT NULL,
            client TEXT NOT NULL, issued_at TEXT NOT NULL, recorded_at TEXT NOT NULL,
            message_id TEXT NOT NULL, response_id TEXT NOT NULL, envelope BLOB NOT NULL);
        INSERT INTO counters VALUES (2025, 1);
        INSERT INTO documents VALUES ('BUS-2025-000001-3', 's/x/v1', 's', 'portal',
            '2025-01-01T00:00:00Z', '2025-01-01T00:00:00+00:00', 'm', 'r', X'7B7D');
    """)
    db.close()
    store = DocumentStore(path, clock=Clock())
    assert store.get("BUS-2025-000001-3").envelope == b"{}"
    assert store.issue(answer(), message_id=new_id()).number.startswith("BUS-2026-")
    assert store.purge(T0 - 30 * DAY) == 1 and store.get("BUS-2025-000001-3").purged
    store.close()


def results(path: Path, now: float) -> MessageStore:
    """Results finished 10 and 3 days before ``now``, and one still pending from 10 days ago."""
    clock = [now - 10 * 86400]
    store = MessageStore(path, clock=lambda: clock[0])
    for mid in ("old", "pending"):
        store.create(mid, client="portal", service="s/x/v1", correlation=mid,
                     expires_at=now + 86400, callback=None)
    store.finish("old", status=200, media_type="application/json", body=b"{}")
    clock[0] = now - 3 * 86400
    store.create("new", client="portal", service="s/x/v1", correlation="new",
                 expires_at=now + 86400, callback=None)
    store.finish("new", status=200, media_type="application/json", body=b"{}")
    return store


def test_finished_results_go_pending_ones_stay(tmp_path: Path) -> None:
    store = results(tmp_path / "messages.db", T0.timestamp())
    assert store.purge(T0.timestamp() - 7 * 86400) == 1
    assert store.get("old", "portal") is None
    assert store.get("new", "portal") is not None and store.get("pending", "portal") is not None
    store.close()


def test_purge_by_the_settings(tmp_path: Path) -> None:
    clock = Clock()
    documents, (old, recent) = store_with(tmp_path / "documents.db", clock, 40, 10)
    assert messages_path(documents.path) == tmp_path / "messages.db"
    assert purge(settings(None, None), documents, T0) == Purged(0, 0)  # kept for ever
    assert not documents.get(old).purged
    assert purge(settings(), documents, T0) == Purged(1, 0)
    assert not (tmp_path / "messages.db").exists()  # no asynchronous results: no file made
    results(tmp_path / "messages.db", T0.timestamp()).close()
    assert purge(settings(30, 7), documents, T0) == Purged(0, 1)
    assert documents.get(old).purged and not documents.get(recent).purged
    documents.close()


def test_a_node_less_store_has_nothing_to_purge(tmp_path: Path) -> None:
    documents = DocumentStore(tmp_path / "documents.db")
    assert purge(settings(), documents, T0) == Purged(0, 0)
    assert not documents.path.exists()  # a node that issued nothing gets no file from it


def test_the_thread_purges_at_start_and_then_periodically(tmp_path: Path) -> None:
    clock = Clock()
    documents, (old,) = store_with(tmp_path / "documents.db", clock, 40)
    retention = Retention(settings(), documents, clock=clock, interval_s=0.05)
    retention.start()
    try:
        give_up = time.monotonic() + 5
        while not documents.get(old).purged and time.monotonic() < give_up:
            time.sleep(0.01)
        assert documents.get(old).purged
        clock.now = T0 - 45 * DAY  # a document recorded later is purged at a later round
        later = documents.issue(answer(), message_id=new_id()).number
        clock.now = T0
        while not documents.get(later).purged and time.monotonic() < give_up:
            time.sleep(0.01)
        assert documents.get(later).purged
    finally:
        retention.stop()
    assert retention._thread is None
    documents.close()


def test_no_thread_when_everything_is_kept_for_ever(tmp_path: Path) -> None:
    retention = Retention(settings(None, None), DocumentStore(tmp_path / "d.db"))
    retention.start()
    assert retention._thread is None
    retention.stop()


@pytest.mark.parametrize("kept", [True, False])
def test_the_command(tmp_path: Path, kept: bool) -> None:
    config = tmp_path / "bus.yaml"
    days = "null" if kept else "1"
    config.write_text(
        "documents:\n  path: state/documents.db\n"
        f"  retention_days: {days}\nmessages:\n  retention_days: {days}\n"
    )
    clock = Clock(dt.datetime.now(dt.UTC) - 3 * DAY)
    documents = DocumentStore(tmp_path / "state" / "documents.db", clock=clock)
    documents.issue(answer(), message_id=new_id())
    documents.close()
    results(tmp_path / "state" / "messages.db", time.time()).close()
    result = CliRunner().invoke(app, ["documents", "purge", "--config", str(config)])
    assert result.exit_code == 0, result.output
    expected = (0, 0) if kept else (1, 2)
    assert f"purged {expected[0]} signed answer(s)" in result.output
    assert f"and {expected[1]} asynchronous result(s)" in result.output
    assert PINFL not in result.output


def test_the_thread_also_deletes_what_expired_in_the_node_state(tmp_path: Path) -> None:
    from bus.state import open_state

    now = [1_800_000_000.0]
    state = open_state(tmp_path / "state.db", clock=lambda: now[0])
    retention = Retention(settings(None, None), DocumentStore(tmp_path / "d.db"), state=state)
    assert retention.active  # documents kept for ever, yet the state has ids to forget
    state.remember("envelope-1", now[0] + 60, "a")
    state.claim("idempotency/portal/k", "gw/1", lease_s=5, expires_at=now[0] + 60)
    now[0] += 61
    retention.run_once()
    assert state.purge() == 0  # run_once took both
    assert state.remember("envelope-1", now[0] + 60, "b")  # forgotten: a new id now
    state.close()
