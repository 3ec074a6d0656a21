"""The node state in a SQLite file: the embedded default, nothing to install.

``SqliteState(path)`` keeps seen ids, leases and token buckets in ``state.db`` beside the node's
other files (``state: sqlite:///PATH``; the default). Every process on the machine that opens
the file shares it — a node and its restarted self, two nodes sharing a data folder — but not
other machines: for several machines, ``bus.state.postgres``. The file is created mode 0600 (a
result kept under an ``Idempotency-Key`` is an answer about a person) and written with
``synchronous=NORMAL`` in WAL mode, so a write costs no fsync of its own: a power cut may lose
the last moments, never corrupt the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bus.state.db import StateDb
from bus.state.sql import SqlState

__all__ = ["SqliteState"]


class SqliteState(SqlState):
    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        super().__init__(StateDb(self.path, on_open=self._open, synchronous="NORMAL"),
                         clock=clock)
        self.check()  # a file that cannot be opened is a setup error: say so at start

    @staticmethod
    def _open(db: StateDb) -> None:
        db.execute("PRAGMA secure_delete=ON")  # deleted results do not linger in free pages
        SqlState.create(db)
