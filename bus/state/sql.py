"""The operations of ``NodeState`` in SQL both implementations run (``bus.state.db.StateDb``).

Three tables (``{p}`` is the table prefix of the database):

* ``{p}seen`` — key, source, expires_at: one upsert that overwrites only an expired row, then
  a look at the source kept when it did not;
* ``{p}leases`` — key, owner, fingerprint, state (``running``, ``done``), lease_until,
  expires_at, attempt, result: ``claim`` inserts the row (one statement, the usual case) or, if
  there is one, locks it and decides (see ``bus.state.base``) in one transaction;
* ``{p}buckets`` — bucket, tokens, at: ``take`` locks the row, refills it by the time passed
  and takes, in one transaction.

``SqliteState`` and ``PostgresState`` differ in where the database is and how it is tuned.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bus.state.base import Claim, take_tokens
from bus.state.db import StateDb

__all__ = ["SqlState"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {p}seen (key TEXT PRIMARY KEY, source TEXT NOT NULL, "
    "expires_at {real} NOT NULL)",
    "CREATE INDEX IF NOT EXISTS {p}seen_expiry ON {p}seen (expires_at)",
    "CREATE TABLE IF NOT EXISTS {p}leases (key TEXT PRIMARY KEY, owner TEXT, "
    "fingerprint TEXT NOT NULL, state TEXT NOT NULL, lease_until {real} NOT NULL, "
    "expires_at {real} NOT NULL, attempt INTEGER NOT NULL, result {blob})",
    "CREATE INDEX IF NOT EXISTS {p}leases_expiry ON {p}leases (expires_at)",
    "CREATE TABLE IF NOT EXISTS {p}buckets (bucket TEXT PRIMARY KEY, tokens {real} NOT NULL, "
    "at {real} NOT NULL)",
)
_PURGE_EVERY = 5000  # remembered ids between two purges of the expired ones


class SqlState:
    """``NodeState`` over one ``StateDb`` (see the module docstring)."""

    def __init__(self, db: StateDb, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.shown = db.shown
        self.shared: str | None = str(db.location) if db.postgres else None
        self.clock = clock
        self._writes = 0

    @staticmethod
    def create(db: StateDb) -> None:
        db.script(*_SCHEMA)

    def remember(self, key: str, expires_at: float, source: str) -> bool:
        now = self.clock()
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            self.purge()
        taken = self.db.one(
            "INSERT INTO {p}seen (key, source, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET source = excluded.source, "
            "expires_at = excluded.expires_at WHERE {p}seen.expires_at <= ? RETURNING key",
            (key, source, expires_at, now),
        )
        if taken is not None:
            return True
        row = self.db.one("SELECT source FROM {p}seen WHERE key = ?", (key,))
        return row is None or row[0] == source  # None: purged meanwhile, so expired

    def claim(
        self, key: str, owner: str, *, lease_s: float, expires_at: float, fingerprint: str = ""
    ) -> Claim:
        now = self.clock()
        until = min(now + lease_s, expires_at)
        db = self.db
        insert = (
            "INSERT INTO {p}leases (key, owner, fingerprint, state, lease_until, expires_at, "
            "attempt) VALUES (?, ?, ?, 'running', ?, ?, 1) ON CONFLICT (key) DO NOTHING"
        )
        args = (key, owner, fingerprint, until, expires_at)
        if db.execute(insert, args):  # the usual case, one atomic statement
            return Claim("new")
        with db.transaction():
            if db.execute(insert, args):  # deleted meanwhile (released, purged)
                return Claim("new")
            row = db.one(
                "SELECT fingerprint, state, lease_until, expires_at, attempt, result "
                "FROM {p}leases WHERE key = ?" + db.for_update,
                (key,),
            )
            assert row is not None  # the insert met it, and only purge deletes, in a lock
            kept_fingerprint, state, lease_until, kept_expiry, attempt, result = row
            if kept_expiry <= now:  # a stale row (expired, not purged yet): start afresh
                self._hold(key, owner, fingerprint, until, expires_at, 1)
                return Claim("new")
            if kept_fingerprint != fingerprint:
                return Claim("conflict")
            if state == "done":
                return Claim("answered", attempt, bytes(result))
            if lease_until > now:
                return Claim("busy", attempt, lease_until=lease_until)
            self._hold(key, owner, fingerprint, until, kept_expiry, attempt + 1)
            return Claim("taken-over", attempt + 1)

    def _hold(
        self, key: str, owner: str, fingerprint: str, until: float, expires_at: float, attempt: int
    ) -> None:
        self.db.execute(
            "UPDATE {p}leases SET owner = ?, fingerprint = ?, state = 'running', "
            "lease_until = ?, expires_at = ?, attempt = ?, result = NULL WHERE key = ?",
            (owner, fingerprint, until, expires_at, attempt, key),
        )

    def settle(self, key: str, owner: str, result: bytes) -> bool:
        return (
            self.db.execute(
                "UPDATE {p}leases SET state = 'done', result = ?, owner = NULL "
                "WHERE key = ? AND owner = ? AND state = 'running'",
                (result, key, owner),
            )
            == 1
        )

    def release(self, key: str, owner: str) -> None:
        self.db.execute(
            "DELETE FROM {p}leases WHERE key = ? AND owner = ? AND state = 'running'",
            (key, owner),
        )

    def renew(self, key: str, owner: str, *, lease_s: float) -> bool:
        now = self.clock()
        return bool(self.db.execute(
            "UPDATE {p}leases SET lease_until = CASE WHEN ? < expires_at THEN ? "
            "ELSE expires_at END WHERE key = ? AND owner = ? AND state = 'running'",
            (now + lease_s, now + lease_s, key, owner),
        ))

    def abandon(self, holder: str) -> int:
        prefix = holder + "/"
        return self.db.execute(
            "UPDATE {p}leases SET lease_until = ? WHERE state = 'running' "
            "AND substr(owner, 1, ?) = ? AND lease_until > ?",
            (self.clock(), len(prefix), prefix, self.clock()),
        )

    def take(self, bucket: str, cost: float, *, rate: float, burst: float) -> float:
        now = self.clock()
        db = self.db
        with db.transaction():
            db.execute(
                "INSERT INTO {p}buckets (bucket, tokens, at) VALUES (?, ?, ?) "
                "ON CONFLICT (bucket) DO NOTHING",
                (bucket, burst, now),
            )
            row = db.one(
                "SELECT tokens, at FROM {p}buckets WHERE bucket = ?" + db.for_update, (bucket,)
            )
            assert row is not None
            tokens, at = float(row[0]), float(row[1])
            # another node's clock may be a little ahead: time never runs backwards here
            tokens, wait = take_tokens(tokens, now - at, cost, rate=rate, burst=burst)
            db.execute(
                "UPDATE {p}buckets SET tokens = ?, at = ? WHERE bucket = ?",
                (tokens, max(at, now), bucket),
            )
        return wait

    def purge(self) -> int:
        now = self.clock()
        with self.db.transaction():
            seen = self.db.execute("DELETE FROM {p}seen WHERE expires_at <= ?", (now,))
            leases = self.db.execute("DELETE FROM {p}leases WHERE expires_at <= ?", (now,))
        return seen + leases

    def check(self) -> str:
        self.db.one("SELECT 1")
        return self.shown

    def close(self) -> None:
        self.db.close()
