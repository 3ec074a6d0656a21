"""Asynchronous requests: ``POST …?mode=async`` answers 202 at once; the result is kept here.

``MessageStore`` is a SQLite file on the gateway node (``messages.db`` beside the documents;
mode 0600, since answers hold personal data): one row per asynchronous request — message id,
client, service, state (``pending``, ``done``), the HTTP status and body of the result (the
provider's signed answer, or a problem document), its request number, the callback URL. The
client polls ``GET /v1/messages/{id}`` (only the client who asked sees it) or names a callback
URL (``X-Bus-Callback``) that receives the result by ``POST``, retried with a doubling delay.

A request still pending when the node stops cannot be finished by the next process (the reply
is awaited in memory): at start such rows are closed with 503 ``bus-unavailable`` and a detail
that says so, never left pending for ever; the client asks again (the provider's answer, if it
came, is in the provider's audit log).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MessageRecord", "MessageStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY,
    client TEXT NOT NULL,
    service TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    status INTEGER,
    media_type TEXT,
    body BLOB,
    number TEXT,
    callback TEXT,
    created_at REAL NOT NULL,
    finished_at REAL
)
"""


@dataclass(frozen=True)
class MessageRecord:
    message_id: str
    client: str
    service: str
    state: str
    status: int | None
    media_type: str | None
    body: bytes | None
    number: str | None
    callback: str | None


class MessageStore:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def close_interrupted(self, body: bytes, media_type: str) -> int:
        """Close the rows a previous process left pending (see the module docstring)."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE messages SET state = 'done', status = 503, media_type = ?, body = ?, "
                "finished_at = ? WHERE state = 'pending'",
                (media_type, body, self._clock()),
            )
            return cursor.rowcount

    def create(self, message_id: str, *, client: str, service: str,
               callback: str | None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO messages (message_id, client, service, state, callback, created_at)"
                " VALUES (?, ?, ?, 'pending', ?, ?)",
                (message_id, client, service, callback, self._clock()),
            )

    def finish(self, message_id: str, *, status: int, media_type: str, body: bytes,
               number: str | None = None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE messages SET state = 'done', status = ?, media_type = ?, body = ?, "
                "number = ?, finished_at = ? WHERE message_id = ?",
                (status, media_type, body, number, self._clock(), message_id),
            )

    def get(self, message_id: str, client: str) -> MessageRecord | None:
        """The record of ``message_id`` if ``client`` asked it, else None."""
        with self._lock:
            row = self._db.execute(
                "SELECT message_id, client, service, state, status, media_type, body, number, "
                "callback FROM messages WHERE message_id = ? AND client = ?",
                (message_id, client),
            ).fetchone()
        return None if row is None else MessageRecord(*row)

    def purge(self, before: float) -> int:
        """Delete the finished results that finished before ``before`` (a Unix time): retention
        (``messages.retention_days``, run by ``bus.retention``). Pending rows stay. How many."""
        with self._lock:
            self._db.execute("PRAGMA secure_delete=ON")  # the bodies hold personal data
            cursor = self._db.execute(
                "DELETE FROM messages WHERE state = 'done' AND finished_at < ?", (before,)
            )
            return cursor.rowcount

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()
