"""Retention: signed answers and asynchronous results are not kept for ever.

Two periods, because the two stores serve different ends:

- ``documents.retention_days`` (default 365): a document's signed answer (personal data) is
  deleted that long after it was recorded; the number's public part stays, so ``/verify`` keeps
  answering for the paper a citizen holds (``bus.records.documents``, "Retention").
- ``messages.retention_days`` (default 7, at most the documents' period — a result holds the
  same signed answer): a finished asynchronous result is deleted that long after it finished
  (``bus.records.async_results.MessageStore.purge``). It is a mailbox the client empties within
  seconds.

``null`` keeps that store's rows for ever. ``purge`` does both once; ``Retention`` (owned by the
``Node``) runs it in a daemon thread at once when the node starts and then every hour
(``PURGE_EVERY_S``): cheap (an indexed range, in small transactions) and off the request path.
``run_bus.py documents purge`` runs it from the command line, beside a running node or not.
Logged: how many rows went, never what they held. The thread also deletes what has expired in
the node state (``bus.state``: seen envelope ids, leases, ``Idempotency-Key`` answers), which
a node that never checks a replay would otherwise never get round to.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bus.config.settings import BusSettings
from bus.core.envelope import utcnow
from bus.core.seal import Clock
from bus.records.async_results import MessageStore
from bus.records.documents import DocumentStore
from bus.state import NodeState

__all__ = ["PURGE_EVERY_S", "Purged", "Retention", "messages_path", "purge"]

log = logging.getLogger("bus.retention")
PURGE_EVERY_S = 3600.0


@dataclass(frozen=True)
class Purged:
    documents: int  # signed answers deleted (their rows stay)
    messages: int  # asynchronous results deleted


def messages_path(documents: Path) -> Path:
    """Where ``bus.gateway.asynchronous`` keeps asynchronous results: beside the documents."""
    return documents.with_name("messages.db")


def purge(
    settings: BusSettings,
    documents: DocumentStore,
    now: dt.datetime,
    *,
    going: Callable[[], bool] = lambda: True,
) -> Purged:
    """Delete what is past its retention period at ``now`` (see the module docstring)."""
    kept = settings.documents.retention_days
    answers = 0
    if kept is not None and documents.exists():  # a node that issued none has no file
        answers = documents.purge(now - dt.timedelta(days=kept), going=going)
    if not going():
        return Purged(answers, 0)
    results = 0
    days = settings.messages.retention_days
    path = messages_path(documents.path)
    # a node that never took an async request has no file
    if days is not None and (documents.shared is not None or path.exists()):
        store = MessageStore(path, shared=documents.shared)
        try:
            results = store.purge((now - dt.timedelta(days=days)).timestamp())
        finally:
            store.close()
    return Purged(answers, results)


class Retention:
    """``purge`` in a daemon thread: once when started, then every ``interval_s``."""

    def __init__(
        self,
        settings: BusSettings,
        documents: DocumentStore,
        *,
        clock: Clock = utcnow,
        interval_s: float = PURGE_EVERY_S,
        state: NodeState | None = None,
    ) -> None:
        self.settings = settings
        self.documents = documents
        self.state = state
        self.clock = clock
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return (
            self.state is not None
            or self.settings.documents.retention_days is not None
            or self.settings.messages.retention_days is not None
        )

    def start(self) -> None:
        if self._thread is not None or not self.active:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bus-retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> Purged:
        if self.state is not None:
            expired = self.state.purge()
            if expired:
                log.info("node state purge", extra={"bus": {"expired": expired}})
        purged = purge(
            self.settings, self.documents, self.clock(), going=lambda: not self._stop.is_set()
        )
        if purged.documents or purged.messages:
            log.info("retention purge", extra={"bus": {
                "documents": purged.documents, "messages": purged.messages}})
        return purged

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the store down for a while: the next round tries again
                log.exception("retention purge failed")
            self._stop.wait(self.interval_s)
