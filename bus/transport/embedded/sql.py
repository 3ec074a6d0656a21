"""The SQL of the embedded transport: its schema, its statements, rows to and from ``Message``.

Schema (created on open, brought to ``PRAGMA user_version`` = 2 by ``migrate``)::

    messages      seq INTEGER PRIMARY KEY (publish order: the FIFO key), queue, message_id,
                  body BLOB, correlation_id, reply_to, expires_at REAL (unix s), headers (JSON),
                  attempts (deliveries so far), state ('ready' | 'inflight'),
                  available_at (retry delay), redelivered (an unsettled delivery was taken back),
                  owner (the instance that has it in flight; added in version 2)
                  INDEX messages_claim (queue, state, seq)
    dead_letters  id INTEGER PRIMARY KEY, queue it left, the message columns,
                  reason, attempts, failed_at

``translated`` is the one place ``sqlite3`` (and file system) errors become ``BusUnavailable``.
How the queues use all this is described in ``bus.transport.embedded.queue_file``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

import orjson

from bus.core.errors import BusUnavailable
from bus.transport.base import Message

__all__ = [
    "BURY",
    "CLAIM",
    "COLS",
    "INSERT",
    "INSERT_CLAIMED",
    "RETRY",
    "SCHEMA",
    "VERSION",
    "message_of",
    "migrate",
    "params_of",
    "translated",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY, queue TEXT NOT NULL, message_id TEXT NOT NULL, body BLOB NOT NULL,
    correlation_id TEXT, reply_to TEXT, expires_at REAL, headers TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'inflight')),
    available_at REAL NOT NULL, redelivered INTEGER NOT NULL DEFAULT 0, owner TEXT);
CREATE INDEX IF NOT EXISTS messages_claim ON messages (queue, state, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY, queue TEXT NOT NULL, message_id TEXT NOT NULL, body BLOB NOT NULL,
    correlation_id TEXT, reply_to TEXT, expires_at REAL, headers TEXT,
    reason TEXT NOT NULL, attempts INTEGER NOT NULL, failed_at REAL NOT NULL);
"""
VERSION = 2
COLS = "message_id, body, correlation_id, reply_to, expires_at, headers"
INSERT = f"INSERT INTO messages (queue, {COLS}, available_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_CLAIMED = (  # a request handed straight to a consumer of the asking instance
    f"INSERT INTO messages (queue, {COLS}, available_at, state, attempts, owner)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'inflight', 1, ?)"
)
CLAIM = (
    f"SELECT seq, {COLS}, attempts, redelivered FROM messages"
    " WHERE queue = ? AND state = 'ready' AND available_at <= ? ORDER BY seq LIMIT 2"
)
RETRY = "UPDATE messages SET state = 'ready', available_at = ?, redelivered = 0 WHERE seq = ?"
BURY = (
    f"INSERT INTO dead_letters (queue, {COLS}, reason, attempts, failed_at)"
    f" SELECT queue, {COLS}, ?, attempts, ? FROM messages WHERE seq = ?"
)


def migrate(db: sqlite3.Connection) -> None:
    """Create the schema, or bring a file of an earlier version up to ``VERSION``."""
    db.executescript(SCHEMA)
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version >= VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
        if "owner" not in columns:  # version 1
            db.execute("ALTER TABLE messages ADD COLUMN owner TEXT")
        db.execute(f"PRAGMA user_version = {VERSION}")
    except BaseException:
        db.rollback()
        raise
    db.commit()


def message_of(row: tuple[Any, ...]) -> Message:
    """A ``Message`` from the six ``COLS`` columns."""
    mid, body, corr, reply_to, expires_at, headers = row
    hdrs = orjson.loads(headers) if headers else {}
    return Message(bytes(body), mid, corr, reply_to, expires_at, hdrs)


def params_of(message: Message) -> tuple[Any, ...]:
    """The six ``COLS`` values of ``message``."""
    m = message
    headers = orjson.dumps(dict(m.headers)).decode() if m.headers else None
    return (m.message_id, m.body, m.correlation_id, m.reply_to, m.expires_at, headers)


@contextlib.contextmanager
def translated(path: str) -> Iterator[None]:
    """The one place ``sqlite3`` (and file system) errors become ``BusUnavailable``."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise BusUnavailable(f"embedded transport {path}: {exc}") from exc
