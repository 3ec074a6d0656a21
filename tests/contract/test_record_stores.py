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
from tests.bus.records.test_documents import Clock, answer
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
