"""The audit store contract, run against SQLite and the live PostgreSQL on 127.0.0.1:5432.

Each PostgreSQL test gets its own uniquely named schema, dropped afterwards. ``Backend.raw``
runs SQL past the store with the append-only triggers out of the way: what someone with write
access to the database could do, and what ``verify`` must catch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import pytest

from bus.core.errors import BusUnavailable
from bus.records.audit import (
    GENESIS,
    AuditEntry,
    AuditLog,
    AuditRecord,
    AuditStore,
    SqliteAuditStore,
    entry_hash,
    open_audit_store,
    verify,
)

PG = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = b"contract-test-secret-0123456789"


@dataclass
class Backend:
    name: str
    open: Callable[[], AuditStore]  # another store on the same log (as another process would)
    raw: Callable[[str, Sequence[Any]], None]  # SQL with the triggers out of the way
    table: str


def _sqlite(tmp_path: Path) -> Iterator[Backend]:
    path = tmp_path / "audit.db"

    def raw(statement: str, args: Sequence[Any] = ()) -> None:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("DROP TRIGGER IF EXISTS audit_no_update")
            db.execute("DROP TRIGGER IF EXISTS audit_no_delete")
            db.execute(statement, args)
        finally:
            db.close()

    yield Backend("sqlite", lambda: open_audit_store(f"sqlite:///{path}"), raw, "audit")


def _postgres() -> Iterator[Backend]:
    import psycopg

    schema = f"audit_test_{uuid.uuid4().hex[:12]}"
    table = f"{schema}.bus_audit"

    def raw(statement: str, args: Sequence[Any] = ()) -> None:
        with psycopg.connect(PG, autocommit=True) as db:
            db.execute("SET session_replication_role = replica")  # triggers off
            db.execute(statement.replace("audit", table, 1), args)

    try:
        yield Backend("postgres", lambda: open_audit_store(PG, table=table), raw, table)
    finally:
        with psycopg.connect(PG, autocommit=True) as db:
            db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    factory = _sqlite(tmp_path) if request.param == "sqlite" else _postgres()
    yield from factory


@pytest.fixture
def store(backend: Backend) -> Iterator[AuditStore]:
    s = backend.open()
    try:
        yield s
    finally:
        s.close()


def record(n: int, subject: str | None = "s-key", outcome: str = "ok") -> AuditRecord:
    return AuditRecord(
        message_id=str(uuid.UUID(int=n)),
        correlation=str(uuid.UUID(int=n)),
        client="portal",
        provider="cadastre",
        service="cadastre/property-ownership/v1",
        user=f"officer-{n}",
        purpose="housing-subsidy",
        subject=subject,
        outcome=outcome,
        side="provider",
        requested_at="2026-03-01T10:00:00.000000+00:00",
        response_digest="ab" * 32,
    )


def fill(store: AuditStore, n: int = 6) -> list[AuditEntry]:
    return store.append([record(i) for i in range(1, n + 1)])


# --- writing and reading ----------------------------------------------------------------------


def test_append_chains_and_reads_back(store: AuditStore) -> None:
    written = fill(store, 3) + store.append([record(4)])
    assert [e.seq for e in written] == [1, 2, 3, 4]
    assert written[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(written))
    assert list(store.entries()) == written
    count, head, broken = verify(store.entries())
    assert (count, head, broken) == (4, written[-1].hash, None)


def test_no_payload_and_no_identifier_columns(store: AuditStore) -> None:
    (entry,) = store.append([record(1, subject="31505861234567")])
    # the store keeps what it is given; AuditLog gives it the HMAC (test below)
    assert set(entry.hashed_fields()) >= {"subject", "response_digest", "prev_hash"}
    assert "payload" not in entry.hashed_fields()


def test_entries_by_subject_and_since(store: AuditStore) -> None:
    store.append([record(1, "alice"), record(2, "bob"), record(3, "alice")])
    assert [e.seq for e in store.entries(subject="alice")] == [1, 3]
    assert list(store.entries(subject="nobody")) == []
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert list(store.entries(since=future)) == []
    assert len(list(store.entries(since=future - dt.timedelta(days=1)))) == 3


def test_two_stores_on_one_log_keep_one_chain(backend: Backend, store: AuditStore) -> None:
    other = backend.open()
    try:
        threads = [
            threading.Thread(target=lambda s=s, i=i: s.append([record(i), record(i + 100)]))
            for i, s in enumerate([store, other] * 10)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    count, _, broken = verify(store.entries())
    assert (count, broken) == (40, None)


def test_the_store_refuses_updates_and_deletes(backend: Backend, store: AuditStore) -> None:
    fill(store, 2)
    if backend.name == "sqlite":
        db = sqlite3.connect(cast(SqliteAuditStore, store).path, isolation_level=None)
        with pytest.raises(sqlite3.Error, match="append-only"):
            db.execute("UPDATE audit SET outcome = 'x'")
        with pytest.raises(sqlite3.Error, match="append-only"):
            db.execute("DELETE FROM audit")
        db.close()
    else:
        import psycopg

        with psycopg.connect(PG, autocommit=True) as db:
            with pytest.raises(psycopg.Error, match="append-only"):
                db.execute(f"UPDATE {backend.table} SET outcome = 'x'")
            with pytest.raises(psycopg.Error, match="append-only"):
                db.execute(f"DELETE FROM {backend.table}")
            with pytest.raises(psycopg.Error, match="append-only"):
                db.execute(f"TRUNCATE {backend.table}")


def test_check_passes_on_a_writable_store(store: AuditStore) -> None:
    assert "writable" in store.check()


# --- tampering --------------------------------------------------------------------------------


def test_an_edited_entry_is_detected(backend: Backend, store: AuditStore) -> None:
    fill(store)
    backend.raw("UPDATE audit SET purpose = 'marketing' WHERE seq = 3", ())
    count, _, broken = verify(store.entries())
    assert broken is not None and (broken.seq, broken.kind) == (3, "edited")
    assert count == 2


def test_an_edit_with_its_hash_recomputed_breaks_the_next_link(
    backend: Backend, store: AuditStore
) -> None:
    entries = fill(store)
    forged = replace(entries[2], user="someone-else")
    forged = replace(forged, hash=entry_hash(forged))
    mark = "%s" if backend.name == "postgres" else "?"
    backend.raw(
        f'UPDATE audit SET "user" = {mark}, hash = {mark} WHERE seq = 3', (forged.user, forged.hash)
    )
    _, _, broken = verify(store.entries())
    assert broken is not None and (broken.seq, broken.kind) == (4, "out-of-order")


def test_a_deleted_entry_is_detected(backend: Backend, store: AuditStore) -> None:
    fill(store)
    backend.raw("DELETE FROM audit WHERE seq = 4", ())
    count, _, broken = verify(store.entries())
    assert broken is not None and (broken.seq, broken.kind) == (5, "missing")
    assert count == 3


def test_a_deleted_and_renumbered_entry_is_detected(backend: Backend, store: AuditStore) -> None:
    fill(store)
    backend.raw("DELETE FROM audit WHERE seq = 4", ())
    for seq in (5, 6):
        backend.raw(f"UPDATE audit SET seq = {seq - 1} WHERE seq = {seq}", ())
    _, _, broken = verify(store.entries())
    assert broken is not None and (broken.seq, broken.kind) == (4, "out-of-order")


def test_swapped_entries_are_detected(backend: Backend, store: AuditStore) -> None:
    fill(store)
    backend.raw("UPDATE audit SET seq = -1 WHERE seq = 2", ())
    backend.raw("UPDATE audit SET seq = 2 WHERE seq = 3", ())
    backend.raw("UPDATE audit SET seq = 3 WHERE seq = -1", ())
    count, _, broken = verify(store.entries())
    assert broken is not None and (broken.seq, broken.kind) == (2, "out-of-order")
    assert count == 1


# --- the group-commit writer ------------------------------------------------------------------


class Counting:
    """A store that counts its transactions."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self.batches: list[int] = []

    def append(self, records: Sequence[AuditRecord]) -> list[AuditEntry]:
        self.batches.append(len(records))
        return self.store.append(records)

    def entries(self, **kw: Any) -> Iterator[AuditEntry]:
        return self.store.entries(**kw)

    def check(self) -> str:
        return self.store.check()

    def close(self) -> None:
        self.store.close()


def test_group_commit_many_writers_few_transactions(backend: Backend) -> None:
    counting = Counting(backend.open())
    observed: list[float] = []
    audit = AuditLog(counting, secret=SECRET, observe=observed.append)
    try:
        results: list[AuditEntry] = []
        lock = threading.Lock()

        def writer(i: int) -> None:
            entry = audit.write(record(i))
            with lock:
                results.append(entry)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(e.seq for e in results) == list(range(1, 65))
        assert sum(counting.batches) == 64
        assert len(counting.batches) < 64  # batched: fewer transactions than entries
        assert len(observed) == 64
        count, _, broken = verify(counting.entries())
        assert (count, broken) == (64, None)
    finally:
        audit.close()


def test_an_idle_log_appends_in_the_callers_thread(tmp_path: Path) -> None:
    class Where(Counting):
        def __init__(self, store: AuditStore) -> None:
            super().__init__(store)
            self.threads: list[str] = []

        def append(self, records: Sequence[AuditRecord]) -> list[AuditEntry]:
            self.threads.append(threading.current_thread().name)
            return super().append(records)

    where = Where(SqliteAuditStore(tmp_path / "a.db"))
    observed: list[float] = []
    audit = AuditLog(where, secret=SECRET, observe=observed.append)
    try:
        assert [audit.write(record(i)).seq for i in range(3)] == [1, 2, 3]
        assert where.threads == [threading.current_thread().name] * 3  # no hand-off
        assert len(observed) == 3
        assert audit.submit(record(4)).result(5).seq == 4  # submit: the writer thread
        assert where.threads[-1] == "audit-writer"
    finally:
        audit.close()


def test_records_submitted_during_a_callers_append_wait_for_it(tmp_path: Path) -> None:
    """One append at a time: what is submitted while a caller appends its own entry is
    committed by the writer thread once that append is done, in one group."""

    class Gated(Counting):
        def __init__(self, store: AuditStore) -> None:
            super().__init__(store)
            self.entered, self.release = threading.Event(), threading.Event()
            self.active = 0
            self.overlapped = False

        def append(self, records: Sequence[AuditRecord]) -> list[AuditEntry]:
            self.active += 1
            self.overlapped |= self.active > 1
            try:
                if not self.entered.is_set():  # hold the first (inline) append open
                    self.entered.set()
                    assert self.release.wait(10)
                return super().append(records)
            finally:
                self.active -= 1

    gated = Gated(SqliteAuditStore(tmp_path / "a.db"))
    audit = AuditLog(gated, secret=SECRET)
    try:
        first = threading.Thread(target=audit.write, args=(record(0),))
        first.start()
        assert gated.entered.wait(10)
        futures = [audit.submit(record(i)) for i in range(1, 6)]
        assert not any(f.done() for f in futures)  # waiting for the caller's append
        gated.release.set()
        first.join(10)
        assert sorted(f.result(10).seq for f in futures) == [2, 3, 4, 5, 6]
        assert gated.batches == [1, 5] and not gated.overlapped
    finally:
        gated.release.set()
        audit.close()


def test_a_failing_store_fails_every_waiting_caller(tmp_path: Path) -> None:
    class Broken(Counting):
        def append(self, records: Sequence[AuditRecord]) -> list[AuditEntry]:
            raise BusUnavailable("disk gone")

    audit = AuditLog(Broken(SqliteAuditStore(tmp_path / "a.db")), secret=SECRET)
    try:
        with pytest.raises(BusUnavailable, match="disk gone"):
            audit.write(record(1))
    finally:
        audit.close()


def test_close_writes_what_is_queued(backend: Backend) -> None:
    audit = AuditLog(backend.open(), secret=SECRET)
    futures = [audit.submit(record(i)) for i in range(20)]
    audit.close()
    assert all(f.result(0).seq for f in futures)
    with pytest.raises(BusUnavailable):
        audit.submit(record(99))
    other = backend.open()
    try:
        assert len(list(other.entries())) == 20
    finally:
        other.close()


def test_subjects_are_keyed_hashes(tmp_path: Path) -> None:
    audit = AuditLog(SqliteAuditStore(tmp_path / "a.db"), secret=SECRET)
    other = AuditLog(SqliteAuditStore(tmp_path / "b.db"), secret=b"another-secret-0123456789")
    try:
        key = audit.subject_key("31505861234567")
        assert key is not None and len(key) == 64 and "31505861234567" not in key
        assert key == audit.subject_key("31505861234567")  # a look-up by PINFL works
        assert key != other.subject_key("31505861234567")  # and needs the secret
        assert audit.subject_key(None) is None
    finally:
        audit.close()
        other.close()


def test_a_short_secret_is_refused(tmp_path: Path) -> None:
    store = SqliteAuditStore(tmp_path / "a.db")
    try:
        with pytest.raises(ValueError, match="16 bytes"):
            AuditLog(store, secret=b"short")
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_reconnects_after_the_server_drops_the_connection() -> None:
    import psycopg

    gen = _postgres()  # a schema of its own, dropped when the generator finishes
    backend = next(gen)
    store = backend.open()
    try:
        store.append([record(1)])
        pid = store._db.info.backend_pid  # type: ignore[attr-defined]
        with psycopg.connect(PG, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(BusUnavailable):
            store.append([record(2)])  # the batch in flight fails: its callers are told
        store.append([record(3)])  # the next one reconnects
        count, _, broken = verify(store.entries())
        assert (count, broken) == (2, None)
    finally:
        store.close()
        with contextlib.suppress(StopIteration):
            next(gen)
