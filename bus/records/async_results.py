"""Asynchronous requests: ``POST …?mode=async`` answers 202 at once; the result is kept here.

``MessageStore`` is a SQLite file on the gateway node (``messages.db`` beside the documents;
mode 0600, since answers hold personal data), or the table ``bus_messages`` of the shared
PostgreSQL state (``state: postgresql://…``, ``shared``), where a client may poll its result on
any node and an asynchronous bundle's progress shows every part, whichever node took it. One
row per asynchronous request — message id, client, service, correlation and deadline of the
request, state (``pending``, ``done``), the HTTP status and body of the result (the provider's
signed answer, or a problem document), its request number, the callback URL and whether it was
delivered (``callback_state``: ``pending``, ``delivered``, ``failed``). The client polls
``GET /v1/messages/{id}`` (only the client who asked sees it) or names a callback URL
(``X-Bus-Callback``) that receives the result.

Rows outlive the process: the reply of a pending row is taken from the node's durable async
reply queue whenever it comes, also after a restart (``bus.gateway.asynchronous``); a row whose
deadline passed is finished as 504; a callback not yet delivered is delivered again. ``finish``
finishes a pending row once — a late duplicate reply changes nothing — and ``refinish`` replaces
an error result with the answer of a replayed dead letter (its callback due again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bus.state.db import StateDb

__all__ = ["MessageRecord", "MessageStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {p}messages (
    message_id TEXT PRIMARY KEY,
    client TEXT NOT NULL,
    service TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    status INTEGER,
    media_type TEXT,
    body {blob},
    number TEXT,
    callback TEXT,
    created_at {real} NOT NULL,
    finished_at {real},
    correlation TEXT,
    expires_at {real},
    callback_state TEXT
)
"""
_ADDED = (("correlation", "TEXT"), ("expires_at", "{real}"), ("callback_state", "TEXT"))
_RECORD = (
    "message_id, client, service, state, status, media_type, body, number, callback, "
    "correlation, expires_at"
)


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
    correlation: str | None = None
    expires_at: float | None = None

    @property
    def id(self) -> str:  # with client, service and correlation: what the exchanger checks
        return self.message_id


def _record(row: tuple[object, ...]) -> MessageRecord:
    values = list(row)
    if values[6] is not None:  # bytes, whichever driver read them
        values[6] = bytes(values[6])  # type: ignore[call-overload]
    return MessageRecord(*values)  # type: ignore[arg-type]


class MessageStore:
    def __init__(
        self, path: Path, *, clock: Callable[[], float] = time.time, shared: str | None = None
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._db = StateDb(shared or self.path, on_open=self._open, synchronous=None,
                           what="message store")
        # bundle parts in the order they were made: the file's rowid, or a column of its own
        self._made = "seq" if self._db.postgres else "rowid"
        self._db.one("SELECT 1")  # created (and checked) now, not at the first request

    @staticmethod
    def _open(db: StateDb) -> None:
        db.script(_SCHEMA)
        have = db.columns("messages")
        for column, kind in _ADDED:  # a file written before these columns existed
            if column not in have:
                db.execute(db.ddl(f"ALTER TABLE {{p}}messages ADD COLUMN {column} {kind}"))
        if db.postgres and "seq" not in have:
            db.execute("ALTER TABLE {p}messages ADD COLUMN IF NOT EXISTS seq BIGSERIAL")
        db.script("CREATE INDEX IF NOT EXISTS {p}messages_correlation ON {p}messages (correlation)")

    def create(self, message_id: str, *, client: str, service: str, correlation: str,
               expires_at: float, callback: str | None) -> None:
        self._db.execute(
                "INSERT INTO {p}messages (message_id, client, service, state, callback, "
                "callback_state, created_at, correlation, expires_at)"
                " VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
                (message_id, client, service, callback, None if callback is None else "pending",
                 self._clock(), correlation, expires_at),
            )

    def delete(self, message_id: str) -> None:
        """Forget a request that could not be sent (its client was told so)."""
        self._db.execute("DELETE FROM {p}messages WHERE message_id = ?", (message_id,))

    def finish(self, message_id: str, *, status: int, media_type: str, body: bytes,
               number: str | None = None) -> bool:
        """Record the result of a pending request; False if it was not pending (any more)."""
        return self._db.execute(
            "UPDATE {p}messages SET state = 'done', status = ?, media_type = ?, body = ?, "
            "number = ?, finished_at = ? WHERE message_id = ? AND state = 'pending'",
            (status, media_type, body, number, self._clock(), message_id),
        ) == 1

    def refinish(self, message_id: str, *, status: int, media_type: str, body: bytes,
                 number: str | None = None) -> bool:
        """Replace the error result of a finished request with ``status`` (an answer that came
        after all, from an operator's ``dlq replay``), its callback due again; False if the
        request is not finished with an error (pending, unknown, or answered already)."""
        return self._db.execute(
            "UPDATE {p}messages SET status = ?, media_type = ?, body = ?, number = ?, "
            "finished_at = ?, callback_state = CASE WHEN callback IS NULL THEN NULL "
            "ELSE 'pending' END WHERE message_id = ? AND state = 'done' AND status >= 400",
            (status, media_type, body, number, self._clock(), message_id),
        ) == 1

    def _one(self, where: str, args: tuple[object, ...]) -> MessageRecord | None:
        row = self._db.one(f"SELECT {_RECORD} FROM {{p}}messages WHERE {where}", args)
        return None if row is None else _record(row)

    def pending(self, message_id: str) -> MessageRecord | None:
        """The record of ``message_id`` while it waits for its answer, else None."""
        return self._one("message_id = ? AND state = 'pending'", (message_id,))

    def overdue(self, now: float) -> list[MessageRecord]:
        """Pending requests whose deadline passed before ``now``."""
        rows = self._db.rows(
            f"SELECT {_RECORD} FROM {{p}}messages WHERE state = 'pending' "
            "AND (expires_at IS NULL OR expires_at < ?)",  # NULL: written before deadlines
            (now,),
        )
        return [_record(row) for row in rows]

    def callbacks_due(self) -> list[MessageRecord]:
        """Finished requests whose callback was not delivered yet."""
        rows = self._db.rows(
            f"SELECT {_RECORD} FROM {{p}}messages WHERE state = 'done' "
            "AND callback_state = 'pending'",
        )
        return [_record(row) for row in rows]

    def callback_settled(self, message_id: str, *, delivered: bool) -> None:
        self._db.execute(
            "UPDATE {p}messages SET callback_state = ? WHERE message_id = ?",
            ("delivered" if delivered else "failed", message_id),
        )

    def find(self, message_id: str) -> MessageRecord | None:
        return self._one("message_id = ?", (message_id,))

    def get(self, message_id: str, client: str) -> MessageRecord | None:
        """The record of ``message_id`` if ``client`` asked it, else None."""
        return self._one("message_id = ? AND client = ?", (message_id, client))

    def conversation(self, correlation: str, client: str) -> list[MessageRecord]:
        """The requests of ``client`` sharing ``correlation`` (an asynchronous bundle's parts),
        in the order they were made."""
        rows = self._db.rows(
            f"SELECT {_RECORD} FROM {{p}}messages WHERE correlation = ? AND client = ? "
            f"ORDER BY created_at, {self._made}", (correlation, client),
        )
        return [_record(row) for row in rows]

    def purge(self, before: float) -> int:
        """Delete the finished results that finished before ``before`` (a Unix time): retention
        (``messages.retention_days``, run by ``bus.records.retention``). Pending rows stay. How
        many."""
        if not self._db.postgres:
            self._db.execute("PRAGMA secure_delete=ON")  # the bodies hold personal data
        return self._db.execute(
            "DELETE FROM {p}messages WHERE state = 'done' AND finished_at < ?", (before,)
        )

    def close(self) -> None:
        self._db.close()
