"""The node's own SQLite files: private, WAL, and openable by several processes at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
import stat
from pathlib import Path

import pytest

from bus.core.local_db import open_local_db


def _open_and_write(path: str, go: multiprocessing.synchronize.Event) -> None:
    go.wait()
    db = open_local_db(path, timeout=10.0)
    db.execute("CREATE TABLE IF NOT EXISTS seen (pid INTEGER)")
    db.execute("INSERT INTO seen VALUES (1)")


def test_a_new_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    db = open_local_db(tmp_path / "sub" / "x.db", synchronous="FULL")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert stat.S_IMODE((tmp_path / "sub" / "x.db").stat().st_mode) == 0o600


@pytest.mark.slow
def test_processes_that_open_a_new_file_at_the_same_moment_all_succeed(tmp_path: Path) -> None:
    # Two nodes sharing a data directory start together: SQLite refuses the switch to WAL
    # with "database is locked" to all but one of them unless the switch is retried.
    ctx = multiprocessing.get_context("fork")
    for round_ in range(8):
        path = str(tmp_path / f"shared-{round_}.db")
        go = ctx.Event()
        procs = [ctx.Process(target=_open_and_write, args=(path, go)) for _ in range(6)]
        for proc in procs:
            proc.start()
        go.set()
        for proc in procs:
            proc.join(30)
        assert [proc.exitcode for proc in procs] == [0] * 6
        rows = sqlite3.connect(path).execute("SELECT count(*) FROM seen").fetchone()[0]
        assert rows == 6


def test_a_file_that_is_not_a_database_is_an_error_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        open_local_db(path, timeout=1.0)
