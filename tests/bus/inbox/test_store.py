"""The operator inbox's SQLite file as a node's worker processes open it: all at once."""

from __future__ import annotations

import threading
from pathlib import Path

from bus.inbox.store import OperatorInbox

OPENERS = 6


def _open_at_once(path: Path) -> tuple[list[OperatorInbox], list[BaseException]]:
    """``OPENERS`` threads open an inbox on ``path`` at the same moment."""
    start = threading.Barrier(OPENERS)
    opened: list[OperatorInbox] = []
    failures: list[BaseException] = []

    def open_one() -> None:
        start.wait()
        try:
            opened.append(OperatorInbox(path))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(OPENERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return opened, failures


def test_inboxes_opened_at_once_on_a_new_file_all_start(tmp_path: Path) -> None:
    """``serve`` starts one worker process per core, and each opens the node's inbox file at the
    same moment: whoever sets the schema up, the others find it done (a node failed to start
    with "duplicate column name: dedupe_key" when two added the column at once)."""
    for attempt in range(20):
        opened, failures = _open_at_once(tmp_path / f"inbox-{attempt}.db")
        for inbox in opened:
            inbox.close()
        assert failures == [], f"attempt {attempt}: {failures[0]!r}"
        assert len(opened) == OPENERS
