"""The node's record stores on both places they can live: their own SQLite files (the default)
and the shared PostgreSQL node state (``state: postgresql://…``, a schema of this test's own).

Two stores opened on one place are two nodes sharing it (PostgreSQL) or one node and its
restarted self (SQLite): either way numbers never repeat and each sees the other's records.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bus.core.envelope import new_id
from bus.core.errors import UnknownDocument
from bus.records.async_results import MessageStore
from bus.records.documents import DocumentStore, format_number
from bus.state.db import StateDb
from tests.bus.records.test_documents import PINFL, Clock, answer
from tests.live import pg_schema

Place = Callable[[str], tuple[Path, str | None]]  # a store's name -> (file, shared URL)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    pg = request.param == "postgres"
    with pg_schema("records_test") if pg else contextlib.nullcontext("") as url:
        yield lambda name: (tmp_path / name, url or None)


def _documents(place: Place, clock: Clock) -> DocumentStore:
    path, shared = place("documents.db")
    return DocumentStore(path, clock=clock, shared=shared)


def test_numbers_are_one_sequence_and_every_store_reads_every_record(place: Place) -> None:
    clock = Clock()
    a, b = _documents(place, clock), _documents(place, clock)
    try:
        numbers: list[str] = []
        lock = threading.Lock()

        def issue(store: DocumentStore) -> None:
            for _ in range(15):
                record = store.issue(answer(), message_id=new_id())
                with lock:
                    numbers.append(record.number)

        threads = [threading.Thread(target=issue, args=(s,)) for s in (a, b, a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(numbers) == [format_number("BUS", 2026, n) for n in range(1, 61)]
        first = a.get(numbers[0])
        assert b.get(numbers[0]) == first and first.envelope
        with pytest.raises(UnknownDocument):
            b.get(format_number("BUS", 2026, 61))
    finally:
        a.close()
        b.close()


def _keyed(subject: str | None) -> str | None:
    return None if subject is None else f"key-of-{subject[::-1]}"  # stands for the audit HMAC


def _documents_of_the_version_before(path: Path, shared: str | None) -> str:
    """A document store as the version before wrote it (no ``subject_key``), holding one
    document; its number."""
    old = StateDb(shared or path, what="document store")
    old.script(
        "CREATE TABLE IF NOT EXISTS {p}counters (year INTEGER PRIMARY KEY, last INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {p}documents (number TEXT PRIMARY KEY, service TEXT NOT "
        "NULL, provider TEXT NOT NULL, client TEXT NOT NULL, issued_at TEXT NOT NULL, "
        "recorded_at TEXT NOT NULL, message_id TEXT NOT NULL, response_id TEXT NOT NULL, "
        "envelope {blob} NOT NULL, fingerprint TEXT, purged_at TEXT)",
    )
    before = format_number("BUS", 2025, 1)
    old.execute("INSERT INTO {p}documents VALUES (?, 's', 'p', 'c', 'i', 'r', 'm', 'x', ?, "
                "NULL, NULL)", (before, b"{}"))
    old.close()
    return before


def test_a_document_knows_whom_it_is_about_by_a_keyed_hash_only(place: Place) -> None:
    path, shared = place("documents.db")
    before = _documents_of_the_version_before(path, shared)
    store = DocumentStore(path, clock=Clock(), shared=shared, subject_key=_keyed)
    try:
        issued = store.issue(answer(), message_id=new_id())
        assert issued.subject_key == _keyed(PINFL)
        read = store.get(issued.number)
        assert read.subject_key == _keyed(PINFL) and read.about(_keyed(PINFL))
        assert not read.about(_keyed("31234567890123")) and not read.about(None)
        nobody = store.issue(answer(subject=None), message_id=new_id())
        assert store.get(nobody.number).subject_key is None
        kept = store.get(before)  # a row from before: nobody's, so no citizen is shown it
        assert kept.subject_key is None and not kept.about(_keyed(PINFL))
        raw = StateDb(shared or path, what="document store")
        try:  # the PINFL itself is nowhere in the row but inside the signed answer
            row = raw.one("SELECT number, service, provider, client, issued_at, recorded_at, "
                          "message_id, response_id, fingerprint, purged_at, subject_key "
                          "FROM {p}documents WHERE number = ?", (issued.number,))
            assert row is not None and PINFL not in str(row)
        finally:
            raw.close()
    finally:
        store.close()


def test_stores_opening_an_older_file_at_once_all_bring_it_up_to_date(place: Place) -> None:
    """A node's worker processes open its files at the same moment: on a file of the version
    before, one adds the missing columns and the others find them added (two adding a column
    at once failed in all but one)."""
    path, shared = place("documents.db")
    _documents_of_the_version_before(path, shared)
    start, failures, stores = threading.Barrier(6), [], []

    def open_and_issue() -> None:
        start.wait()
        store = DocumentStore(path, clock=Clock(), shared=shared, subject_key=_keyed)
        stores.append(store)
        try:
            store.issue(answer(), message_id=new_id())
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_and_issue) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for store in stores:
        store.close()
    assert failures == [] and len(stores) == 6


def test_purged_answers_keep_their_row_on_every_store(place: Place) -> None:
    clock = Clock()
    a, b = _documents(place, clock), _documents(place, clock)
    try:
        old = a.issue(answer(), message_id=new_id())
        clock.now += dt.timedelta(days=40)
        recent = a.issue(answer(), message_id=new_id())
        assert a.exists()
        assert b.purge(clock.now - dt.timedelta(days=30)) == 1
        gone = a.get(old.number)
        assert gone.purged and gone.envelope == b"" and gone.fingerprint == old.fingerprint
        assert not a.get(recent.number).purged
    finally:
        a.close()
        b.close()


def test_async_results_are_read_by_every_store_in_the_order_made(place: Place) -> None:
    path, shared = place("messages.db")
    now = [1_800_000_000.0]
    a = MessageStore(path, clock=lambda: now[0], shared=shared)
    b = MessageStore(path, clock=lambda: now[0], shared=shared)
    try:
        for i, mid in enumerate(("m-1", "m-2", "m-3")):
            a.create(mid, client="portal", service="s/x/v1", correlation="bundle-1",
                     expires_at=now[0] + 60 * (i + 1), callback="https://hook" if i else None)
        assert b.pending("m-1") is not None and b.get("m-1", "tax") is None
        assert b.finish("m-2", status=200, media_type="application/json", body=b'{"ok":1}',
                        number="BUS-2026-000001-9")
        assert not a.finish("m-2", status=504, media_type="x", body=b"")  # finished once
        done = a.get("m-2", "portal")
        assert done is not None and (done.state, done.status, done.body) == (
            "done", 200, b'{"ok":1}')
        assert [r.message_id for r in b.conversation("bundle-1", "portal")] == [
            "m-1", "m-2", "m-3"]
        assert [r.message_id for r in a.callbacks_due()] == ["m-2"]
        b.callback_settled("m-2", delivered=True)
        assert a.callbacks_due() == []
        assert [r.message_id for r in a.overdue(now[0] + 90)] == ["m-1"]
        now[0] += 10 * 86400
        assert b.purge(now[0] - 86400) == 1
        assert a.find("m-2") is None and a.find("m-1") is not None
        a.delete("m-3")
        assert b.find("m-3") is None
    finally:
        a.close()
        b.close()
