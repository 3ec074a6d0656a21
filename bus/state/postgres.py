"""The node state in PostgreSQL: what several nodes share (``state: postgresql://…``).

``PostgresState(url)`` keeps seen ids, leases and token buckets in the tables ``bus_seen``,
``bus_leases`` and ``bus_buckets`` (created if missing, under an advisory lock so that nodes
starting together take turns; ``?options=-csearch_path%3Dschema`` puts them in another schema).
Every node given the same URL refuses the same replays, sees the same leases and takes from the
same buckets; the documents and asynchronous results of those nodes go into the same database
(``bus.records``). Row locks (``SELECT … FOR UPDATE``) make a claim or a take atomic across
nodes; commits are as durable as the server is set (``synchronous_commit``). A node starts while
the database is away (its first use fails as ``BusUnavailable`` and is tried again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bus.core.errors import BusUnavailable
from bus.state.db import StateDb
from bus.state.sql import SqlState

__all__ = ["PostgresState"]

log = logging.getLogger("bus.state")


class PostgresState(SqlState):
    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(StateDb(url, on_open=self._open), clock=clock)
        try:
            self.check()
        except BusUnavailable as exc:
            log.warning("node state not reachable yet; tried again at its next use",
                        extra={"bus": {"state": self.shown, "error": str(exc)}})

    @staticmethod
    def _open(db: StateDb) -> None:
        SqlState.create(db)  # under StateDb's advisory lock
