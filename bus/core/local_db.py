"""The SQLite files a node keeps for itself: the one way they are created and opened.

Queues, documents, async results, the audit log and the operator inbox are each a SQLite file
that several processes may open at once (two nodes sharing a data directory, the node and the
``inbox`` command). ``open_local_db`` creates the file with mode 0600 and its folder 0700, or
narrows an existing file to 0600 (the rows hold personal data; ``signing.files``),
connects in autocommit mode usable from several threads, and switches it to WAL.

Switching to WAL takes an exclusive lock, and SQLite answers that pragma with "database is
locked" at once — without calling the busy handler — while another process is opening the same
file. So the switch is retried until ``timeout`` runs out, and skipped when the file already is
in WAL mode (the mode is stored in the file, so only its first opener ever switches).

Lives in ``adapters`` so that both the operator inbox (``bus.inbox.manual``) and the bus can use it.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Literal

from signing.files import private_file

__all__ = ["Sync", "open_local_db"]

Sync = Literal["OFF", "NORMAL", "FULL"]

_RETRY_S = 0.02


def open_local_db(path: Path | str, *, timeout: float = 10.0, synchronous: Sync | None = None
                  ) -> sqlite3.Connection:
    """Create (0600) and open ``path`` in WAL mode; ``timeout`` is also the busy timeout."""
    path = private_file(path)  # its -wal and -shm files take its mode
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        _use_wal(db, timeout)
        if synchronous is not None:
            db.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        db.close()
        raise
    return db


def _use_wal(db: sqlite3.Connection, timeout: float) -> None:
    give_up = time.monotonic() + timeout
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= give_up:
                raise
            time.sleep(_RETRY_S)
