"""The embedded transport's file: durable queues in one SQLite file, opened by one instance.

``QueueFile(path, node=…)`` opens (or creates) the file, brings its schema up to date
(``bus.transport.embedded.sql``) and hands back the rows a dead predecessor left in flight; its
methods are every read and write the transport makes, each in one transaction. Which thread
calls them, and who is woken after, is ``bus.transport.embedded.transport``'s affair.

Guarantees:

* Durability: WAL; ``synchronous="NORMAL"`` survives the process being killed, ``"FULL"`` also a
  power loss. A write returns after its COMMIT.
* A claim (``BEGIN IMMEDIATE``) turns the oldest ready row of the queue whose ``available_at``
  has come ``inflight`` with ``attempts + 1``; expired rows met on the way are dead-lettered
  with reason ``expired``, or deleted on a reply queue (``reply.*``: nobody waits for a late
  reply). Otherwise only an ack deletes a row; a retry makes it ready again later.
* A row this instance has in flight (``held``) stays so until ``close``, which hands it back
  (``redelivered``). Rows left in flight by a process that died are handed back by the next
  open that finds no other live instance on the file (exclusive ``flock`` on ``<path>.lock``,
  then a shared one while open): a CLI opening the file next to a running node never takes the
  node's in-flight messages. A claimed row names its ``owner`` (this instance's ``node``), and
  an open also hands back the rows in flight under its own name: live instances on one file
  have distinct names (the workers of a node, ``<name>.w<i>``, ``bus.node.wiring``), so those
  were left by a predecessor that died — a crashed worker's messages go back to the queue when
  its replacement opens the file, while the other workers run on.
* ``dead_letters`` lists oldest first; ``replay`` of an unknown id raises ``KeyError``.
* ``counts``: a queue's depth counts its ready rows whose ``available_at`` has come; ``retrying``
  the ready rows still waiting out a retry delay (``depth`` counts both).
* Threads share one connection behind a lock: one connection per thread measured slightly higher
  throughput but far worse tail latency (SQLite's busy-handler sleeps). ``sqlite3`` errors
  become ``BusUnavailable`` in ``sql.translated``; after ``close`` calls raise
  ``TransportClosed``.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import bus.transport.embedded.sql as sql
from bus.core.local_db import Sync, open_local_db
from bus.transport.base import DeadLetter, Message, TransportClosed, is_reply_queue
from signing.files import private_dir, private_file

if sys.platform != "win32":
    import fcntl

__all__ = ["Claimed", "Counts", "QueueFile", "Settling"]

log = logging.getLogger("bus.transport.embedded")

Settling = Literal["ack", "retry", "dead"]


@dataclass(frozen=True)
class Claimed:
    """A row this instance now has in flight."""

    seq: int
    message: Message
    attempt: int
    redelivered: bool


@dataclass(frozen=True)
class Counts:
    depths: dict[str, int]  # ready now, by queue
    retrying: int  # ready, waiting out a retry delay
    dead: int


class QueueFile:
    """One instance's handle on the queues' file; see the module docstring."""

    def __init__(
        self, path: str, *, node: str, synchronous: Sync, clock: Callable[[], float]
    ) -> None:
        self.path = path
        self.node = node
        self._clock = clock
        self._lock = threading.Lock()  # guards _conn and _held
        self._held: set[int] = set()  # seqs this instance has in flight
        self._lock_file: IO[bytes] | None = None
        self._conn: sqlite3.Connection | None = None
        try:
            with sql.translated(path):
                private_dir(Path(path).parent)
                owner = self._take_lock()
                conn = self._conn = open_local_db(path, timeout=5.0, synchronous=synchronous)
                sql.migrate(conn)
                orphans = conn.execute(
                    "UPDATE messages SET state = 'ready', redelivered = 1, owner = NULL"
                    " WHERE state = 'inflight'" + ("" if owner else " AND owner = ?"),
                    () if owner else (node,),
                ).rowcount
                if orphans:
                    log.info("%s: %d unacked message(s) will be redelivered", path, orphans)
            if owner and sys.platform != "win32" and self._lock_file is not None:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_SH)
        except BaseException:
            self._release()
            raise

    def _take_lock(self) -> bool:
        """True when no other instance has the file open, so its in-flight rows are orphans."""
        if sys.platform == "win32":
            return True
        self._lock_file = open(private_file(self.path + ".lock"), "ab")  # noqa: SIM115 - held until close
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_SH)  # waits out another's recovery
            return False
        return True

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    @contextlib.contextmanager
    def _db(self, *, atomic: bool = False) -> Iterator[sqlite3.Connection]:
        """The connection under the lock; in ``BEGIN IMMEDIATE`` … ``COMMIT`` when ``atomic``."""
        with self._lock, sql.translated(self.path):
            db = self._conn
            if db is None:
                raise TransportClosed(f"embedded transport {self.path} is closed")
            if not atomic:
                yield db
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.rollback()
                raise
            db.commit()

    # -- messaging ---------------------------------------------------------------------------

    def insert(self, queue: str, message: Message) -> None:
        """Publish ``message`` on ``queue``."""
        now = self._clock()
        with self._db() as db:
            db.execute(sql.INSERT, (queue, *sql.params_of(message), now))

    def insert_many(self, rows: Iterable[tuple[str, Message]]) -> None:
        """Publish each (queue, message) of ``rows``, in one transaction."""
        now = self._clock()
        with self._db(atomic=True) as db:
            db.executemany(sql.INSERT, [(q, *sql.params_of(m), now) for q, m in rows])

    def insert_claimed(self, queue: str, message: Message) -> int:
        """Publish ``message`` already in flight (this instance's, first attempt): its seq."""
        now = self._clock()
        with self._db() as db:
            seq = db.execute(
                sql.INSERT_CLAIMED, (queue, *sql.params_of(message), now, self.node)
            ).lastrowid
            assert seq is not None
            self._held.add(seq)
        return seq

    def claim(self, queue: str) -> tuple[Claimed | None, bool]:
        """Claim the next deliverable message of ``queue``; also say whether more are ready."""
        now = self._clock()
        with self._db(atomic=True) as db:
            while True:
                rows = db.execute(sql.CLAIM, (queue, now)).fetchall()
                if not rows:
                    return None, False
                seq, *cols, attempts, again = rows[0]
                message = sql.message_of(tuple(cols))
                if message.expires_at is not None and message.expires_at < now:
                    if not is_reply_queue(queue):  # a late reply is dropped (see base)
                        db.execute(sql.BURY, ("expired", now, seq))
                    db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
                    log.info("message %s expired in %s", message.message_id, queue)
                    continue
                db.execute(
                    "UPDATE messages SET state = 'inflight', attempts = attempts + 1, owner = ?"
                    " WHERE seq = ?",
                    (self.node, seq),
                )
                self._held.add(seq)
                return Claimed(seq, message, attempts + 1, again == 1), len(rows) > 1

    def settle(
        self, seq: int, how: Settling, *, delay_s: float = 0.0, reason: str = "",
        reply: tuple[str, Message] | None = None,
    ) -> None:
        """Ack, retry after ``delay_s`` or dead-letter the row ``seq``; ``reply`` (queue,
        message) is written first, in the same transaction."""
        now = self._clock()
        with self._db(atomic=how == "dead" or reply is not None) as db:
            if reply is not None:
                db.execute(sql.INSERT, (reply[0], *sql.params_of(reply[1]), now))
            if how == "ack":
                db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
            elif how == "retry":
                db.execute(sql.RETRY, (now + max(delay_s, 0.0), seq))
            else:
                db.execute(sql.BURY, (reason, now, seq))
                db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
            self._held.discard(seq)

    # -- the admin side ----------------------------------------------------------------------

    def depth(self, queue: str) -> int:
        """Messages of ``queue`` waiting to be delivered (ready now or after a retry delay)."""
        with self._db() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM messages WHERE queue = ? AND state = 'ready'", (queue,)
            ).fetchone()
        return int(row[0])

    def counts(self) -> Counts:
        now = self._clock()
        with self._db() as db:
            depths = {
                q: int(n)
                for q, n in db.execute(
                    "SELECT queue, COUNT(*) FROM messages"
                    " WHERE state = 'ready' AND available_at <= ? GROUP BY queue",
                    (now,),
                )
            }
            (retrying,) = db.execute(
                "SELECT COUNT(*) FROM messages WHERE state = 'ready' AND available_at > ?", (now,)
            ).fetchone()
            (dead,) = db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        return Counts(depths, int(retrying), int(dead))

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self._db() as db:
            rows = db.execute(
                f"SELECT id, queue, {sql.COLS}, reason, attempts, failed_at"
                " FROM dead_letters ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            DeadLetter(str(r[0]), r[1], sql.message_of(r[2:8]), r[8], r[9], r[10]) for r in rows
        ]

    def replay(self, dead_letter_id: str) -> tuple[str, Message]:
        """Put a dead letter back on its queue (same message id, attempts from zero): the
        queue and the message."""
        try:
            key = int(dead_letter_id)
        except ValueError:
            raise KeyError(dead_letter_id) from None
        now = self._clock()
        with self._db(atomic=True) as db:
            row = db.execute(
                f"SELECT queue, {sql.COLS} FROM dead_letters WHERE id = ?", (key,)
            ).fetchone()
            if row is None:
                raise KeyError(dead_letter_id)
            db.execute(sql.INSERT, (*row, now))
            db.execute("DELETE FROM dead_letters WHERE id = ?", (key,))
        return row[0], sql.message_of(row[1:])

    def purge_dead_letters(self, dead_letter_id: str | None = None) -> int:
        with self._db() as db:
            if dead_letter_id is None:
                return db.execute("DELETE FROM dead_letters").rowcount
            try:
                key = int(dead_letter_id)
            except ValueError:
                return 0
            return db.execute("DELETE FROM dead_letters WHERE id = ?", (key,)).rowcount

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Hand back the rows this instance has in flight, and let go of the file."""
        with self._lock:
            if self._conn is not None and self._held:
                try:
                    self._conn.executemany(
                        "UPDATE messages SET state = 'ready', redelivered = 1, owner = NULL"
                        " WHERE seq = ?",
                        [(seq,) for seq in self._held],
                    )
                except sqlite3.Error:
                    log.exception("%s: could not hand back in-flight messages", self.path)
                self._held.clear()
            self._release()

    def _release(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None
