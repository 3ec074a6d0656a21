"""The demo's state archive: a request answered by an archivist, through the operator inbox.

The portal asks ``state-archive/archival-birth-record/v1`` with ``?mode=async`` and gets 202 and
a message id; the node files the request in the archive's inbox. The demo then plays the
archivist with the same desk as ``run_bus.py inbox answer`` (``bus.inbox.desk.InboxDesk``): it looks
the person up in the archive's books (``demo.data.ARCHIVE_BIRTHS``) and answers, or rejects with
``no-data``; the portal polls ``GET /v1/messages/{id}`` and verifies the archive's signature.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bus.inbox.desk import InboxDesk
from demo.data import ARCHIVE_BIRTHS, PEOPLE, UNKNOWN_PINFL, archival_birth, birth_certificate
from schemas import mask_identifier

__all__ = [
    "ARCHIVE",
    "ArchiveResult",
    "ask_archive",
    "leave_task",
    "poll_result",
    "show_archive",
    "wait_for_task",
]

ARCHIVE = "state-archive/archival-birth-record/v1"
ARCHIVIST = "archivist"


@dataclass(frozen=True)
class ArchiveResult:
    pinfl: str
    task: str  # the inbox task (the request's message id)
    status: int  # of the polled result
    answer: dict[str, Any]
    waited_s: float  # from the 202 to the result


def _archivist(desk: InboxDesk, task_id: str) -> None:
    """Look the person up in the books; answer with the record or reject as no-data."""
    task = desk.task(task_id)
    found = archival_birth(str(task.request.get("pinfl")))
    if found is None:
        desk.reject(task_id, operator=ARCHIVIST, code="no-data",
                    detail="no birth record in the archive's books")
    else:
        desk.answer(task_id, birth_certificate(found).model_dump(mode="json"),
                    operator=ARCHIVIST)


def ask_archive(
    client: httpx.Client, desk: InboxDesk, *, act: Callable[[InboxDesk, str], None] = _archivist
) -> list[ArchiveResult]:
    """Ask the archive about a person in its books and one it has never heard of."""
    results = []
    for pinfl in (PEOPLE[1].pinfl, UNKNOWN_PINFL):
        r = client.post(f"/v1/services/{ARCHIVE}", params={"mode": "async"},
                        json={"pinfl": pinfl}, headers={"X-Bus-Purpose": "pension-assignment"})
        if r.status_code != 202:
            raise RuntimeError(f"the archive request was not accepted: {r.status_code} {r.text}")
        accepted = time.perf_counter()
        message_id, location = r.headers["X-Bus-Message-Id"], r.headers["Location"]
        wait_for_task(desk, message_id)
        act(desk, message_id)
        result = poll_result(client, location)
        results.append(ArchiveResult(pinfl, message_id, result.status_code, result.json(),
                                     time.perf_counter() - accepted))
    return results


def leave_task(client: httpx.Client) -> str:
    """Ask the archive about a person in its books and leave the task for a person to answer
    at ``/inbox`` (``demo --keep``); the URL the portal polls for the answer."""
    r = client.post(f"/v1/services/{ARCHIVE}", params={"mode": "async"},
                    json={"pinfl": ARCHIVE_BIRTHS[0].pinfl},
                    headers={"X-Bus-Purpose": "pension-assignment"})
    if r.status_code != 202:
        raise RuntimeError(f"the archive request was not accepted: {r.status_code} {r.text}")
    return str(r.headers["Location"])


def wait_for_task(desk: InboxDesk, task_id: str, timeout_s: float = 10.0) -> None:
    """Wait until the request ``task_id`` is a task in ``desk`` (the provider filed it)."""
    give_up = time.monotonic() + timeout_s
    while not any(t.id == task_id for t in desk.tasks()):
        if time.monotonic() > give_up:
            raise TimeoutError(f"request {task_id} never reached the archive's inbox")
        time.sleep(0.02)


def poll_result(client: httpx.Client, location: str, timeout_s: float = 10.0) -> httpx.Response:
    """``GET`` an asynchronous request's ``location`` until it is no longer pending (202)."""
    give_up = time.monotonic() + timeout_s
    while True:
        r = client.get(location)
        if r.status_code != 202 or time.monotonic() > give_up:
            return r
        time.sleep(0.02)


def show_archive(
    console: Console, client: httpx.Client, desk: InboxDesk,
    verify: Callable[[dict[str, Any]], bool],
) -> bool:
    """Run ``ask_archive`` and print it; True when the record came signed and the unknown
    person was answered ``no-data``."""
    results = ask_archive(client, desk)
    table = Table(title=f"Operator fallback: {ARCHIVE} (?mode=async, answered from the inbox)",
                  title_justify="left")
    for column in ("subject", "task", "archivist", "result", "signature"):
        table.add_column(column, no_wrap=True)
    ok = True
    for result in results:
        if result.status == 200:
            signed = verify(result.answer)
            ok &= signed
            outcome = f"200 {result.answer['payload']['number']}"
            signature = "[green]verified[/green]" if signed else "[red]INVALID[/red]"
        else:
            ok &= result.status == 404 and result.answer.get("code") == "no-data"
            outcome, signature = f"{result.status} {result.answer.get('code')}", "-"
        table.add_row(mask_identifier(result.pinfl), result.task[:8] + "…", "answered"
                      if result.status == 200 else "rejected", outcome, signature)
    console.print(table)
    console.print("an archivist does the same with: python run_bus.py inbox list | show ID | "
                  "answer ID --file answer.json | reject ID, or at /inbox on the node",
                  highlight=False, soft_wrap=True)
    return ok
