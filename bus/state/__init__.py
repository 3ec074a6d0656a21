"""The state a node shares with the other nodes of its bus: seen envelope ids (replay), leases
and results of requests being executed (the provider's memory, ``Idempotency-Key``) and rate
limit buckets, behind one small protocol (``base.NodeState``) with two implementations: SQLite
(``sqlite``, the embedded default: a file beside the node's other files) and PostgreSQL
(``postgres``: what several nodes share). ``db.StateDb`` is the one connection both use, and
the one the node's record stores (``bus.records.documents``, ``bus.records.async_results``) use
to put their tables into the same shared database.

Layer: ``core < transport < config < state < ops < policy < records …``: this package imports
only ``bus.core`` (and is imported by the layers above it); ``bus.core.replay`` reaches it
through a protocol of its own (``SeenIds``), since core sits below.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bus.state.base import Claim, ClaimState, NodeState
from bus.state.db import StateDb, is_postgres_url, shown_location

__all__ = [
    "Claim",
    "ClaimState",
    "NodeState",
    "StateDb",
    "is_postgres_url",
    "open_state",
    "shown_location",
]


def open_state(location: str | Path, *, clock: Callable[[], float] = time.time) -> NodeState:
    """The node state at ``location``: ``sqlite:///PATH``, a bare path, or ``postgresql://…``."""
    text = str(location)
    if is_postgres_url(text):
        from bus.state.postgres import PostgresState

        return PostgresState(text, clock=clock)
    from bus.state.sqlite import SqliteState

    return SqliteState(Path(text.removeprefix("sqlite:///")), clock=clock)
