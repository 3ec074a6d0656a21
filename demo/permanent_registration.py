"""The demo's application answered by an official: permanent residence registration.

Bobur, whom the residence registry does not list, applies to be registered permanently at the
house he owns. The portal first fetches his property record from the cadastre through the bus
(the evidence, with its request number), then submits the application with ``?mode=async``
(``residence-registry/permanent-registration/v1``, adapter kind ``manual``): the node files it
in the registry's operator inbox. The portal sends it again, as after a lost 202: the inbox
files an application once (``dedupe_on: application_id``), so the retry is refused naming the
first request. The demo then plays the passport officer with the same desk as ``run_bus.py
inbox answer``: the applicant owns the house, so he is registered; the portal polls the result
and verifies the registry's signature.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bus.inbox.desk import InboxDesk
from demo.archive import poll_result, wait_for_task
from demo.data import BOBUR
from demo.node_config import PERMANENT_REGISTRATION, PROPERTY
from demo.summary import summary
from schemas import PermanentRegistrationDecision, mask_identifier

__all__ = ["OFFICER", "PURPOSE", "Filing", "decide", "file_application",
           "show_permanent_registration"]

PURPOSE = "residence-registration"
OFFICER = "passport-officer"
_HOUSE = {"region": "Namangan viloyati", "district": "Chust tumani", "street": "Navoiy ko'chasi",
          "house": "18"}


@dataclass
class Filing:
    """One application as the portal saw it: the evidence, the first and the repeated filing."""

    application_id: str
    evidence: httpx.Response
    first: httpx.Response
    again: httpx.Response

    @property
    def message_id(self) -> str:
        return str(self.first.headers.get("X-Bus-Message-Id", ""))


def file_application(client: httpx.Client) -> Filing:
    """Fetch the evidence, submit the application asynchronously, and submit it once more."""
    evidence = client.post(f"/v1/services/{PROPERTY}", json={"pinfl": BOBUR.pinfl},
                           headers={"X-Bus-Purpose": PURPOSE})
    application_id = str(uuid.uuid4())
    numbers = [evidence.headers["X-Bus-Request-Number"]] if evidence.status_code == 200 else []
    application = {"application_id": application_id, "pinfl": BOBUR.pinfl, "address": _HOUSE,
                   "ground": "ownership", "evidence": numbers}
    first, again = (
        client.post(f"/v1/services/{PERMANENT_REGISTRATION}", params={"mode": "async"},
                    json=application, headers={"X-Bus-Purpose": PURPOSE})
        for _ in range(2)
    )
    return Filing(application_id, evidence, first, again)


def decide(desk: InboxDesk, task_id: str, *, today: dt.date | None = None) -> None:
    """The passport officer: register an applicant on the ground of ownership, else refuse."""
    task = desk.task(task_id)
    today = today or dt.date.today()
    owns = task.request.get("ground") == "ownership" and bool(task.request.get("evidence"))
    decision = PermanentRegistrationDecision(
        application_id=uuid.UUID(str(task.request["application_id"])),
        decision="registered" if owns else "refused",
        decided_on=today,
        registered_on=today if owns else None,
        reason=None if owns else "no evidence of the ground given",
    )
    desk.answer(task_id, decision.model_dump(mode="json"), operator=OFFICER)


def show_permanent_registration(
    console: Console, client: httpx.Client, desk: InboxDesk,
    verify: Callable[[str, dict[str, Any]], bool],
) -> bool:
    """Run the application and print it; True when the evidence and the decision came signed,
    the repeated filing was refused and the inbox holds one task of the application."""
    filing = file_application(client)
    table = Table(title=f"Answered by an official: {PERMANENT_REGISTRATION} (?mode=async, "
                        "decided from the operator inbox)", title_justify="left")
    for column in ("step", "service", "subject", "outcome", "signature"):
        table.add_column(column, no_wrap=column != "outcome")
    subject = mask_identifier(BOBUR.pinfl)
    ok = filing.evidence.status_code == 200 and filing.first.status_code == 202 \
        and filing.again.status_code == 202
    if filing.evidence.status_code == 200:
        signed = verify("cadastre", filing.evidence.json())
        ok &= signed
        table.add_row("evidence", PROPERTY, subject,
                      f"200 {summary(PROPERTY, filing.evidence.json()['payload'])}",
                      "[green]verified[/green]" if signed else "[red]INVALID[/red]")
    if not ok:
        console.print(table)
        console.print(f"[red]the application was not accepted: {filing.first.status_code} "
                      f"{filing.again.status_code}[/red]")
        return False
    wait_for_task(desk, filing.message_id)
    repeated = poll_result(client, filing.again.headers["Location"])
    refused = repeated.status_code == 502 and filing.message_id in repeated.json().get(
        "detail", "")
    table.add_row("same again", PERMANENT_REGISTRATION, subject,
                  f"{repeated.status_code} {repeated.json().get('code')}: filed already as "
                  f"{filing.message_id[:8]}…", "-", style="" if refused else "red")
    decide(desk, filing.message_id)
    result = poll_result(client, filing.first.headers["Location"])
    signed = result.status_code == 200 and verify("residence-registry", result.json())
    decided = summary(PERMANENT_REGISTRATION, result.json().get("payload", {}))
    table.add_row("decision", PERMANENT_REGISTRATION, subject, f"{result.status_code} {decided}",
                  "[green]verified[/green]" if signed else "[red]INVALID[/red]",
                  style="" if signed else "red")
    console.print(table)
    tasks = [t for t in desk.tasks(states=("open", "answered", "sending", "audited"),
                                   service=PERMANENT_REGISTRATION)
             if t.request.get("application_id") == filing.application_id]
    ok &= refused and signed and len(tasks) == 1
    console.print(f"the registry's inbox holds {len(tasks)} task of application "
                  f"{filing.application_id[:8]}…; a passport officer does the same at /inbox",
                  highlight=False)
    return ok
