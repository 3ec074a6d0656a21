"""The demo's transactional application: the one-time child-birth benefit, evidence first.

The portal assembles the evidence once-only, in one ``POST /v1/bundles`` (``bus.gateway.bundle``):
the newborn's birth certificate from the SOAP civil registry, the mother's residence record, and
both parents' eligibility from the social register. Each answer comes signed by its agency and
with a request number. The portal then submits the application to the social-protection agency
(``social-protection/child-birth-benefit/v1``) naming those numbers as its evidence; the agency
records it in its own database and answers a receipt with its own number and the date it
decides by. The portal sends the same application again, as it would after losing the answer:
the agency, de-duplicating on the application id, answers the same receipt and keeps one record.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from demo.data import AZIZ, DILNOZA
from demo.node_config import CHILD_BENEFIT, CIVIL, ELIGIBILITY, RESIDENCE
from demo.records import BENEFIT_CHILD
from demo.summary import summary
from schemas import mask_identifier

__all__ = ["BANK_ACCOUNT", "PURPOSE", "BenefitRun", "apply_for_benefit", "show_child_benefit"]

PURPOSE = "child-benefit"
BANK_ACCOUNT = "20206000900045871001"  # the applicant's (synthetic) account for the payment
EVIDENCE: list[tuple[str, str]] = [  # (service, whose PINFL)
    (CIVIL, BENEFIT_CHILD.pinfl),
    (RESIDENCE, DILNOZA.pinfl),
    (ELIGIBILITY, DILNOZA.pinfl),
    (ELIGIBILITY, AZIZ.pinfl),
]

Verify = Callable[[str, dict[str, Any]], bool]


class BenefitRun:
    """What one application went through: its evidence parts, the receipt, and the retry."""

    def __init__(self) -> None:
        self.application_id = str(uuid.uuid4())
        self.parts: list[dict[str, Any]] = []
        self.evidence_ms = 0.0
        self.submitted: httpx.Response | None = None
        self.retried: httpx.Response | None = None

    @property
    def numbers(self) -> list[str]:
        return [p["number"] for p in self.parts if p.get("number")]


def _evidence_holds(parts: list[dict[str, Any]]) -> bool:
    """Every part answered; both parents eligible; no benefit paid for this child yet."""
    if len(parts) != len(EVIDENCE) or any(p["status"] != 200 for p in parts):
        return False
    eligibility = [p["answer"]["payload"] for p in parts[2:]]
    return all(e["eligible"] and BENEFIT_CHILD.pinfl not in e["birth_benefit_paid_for"]
               for e in eligibility)


def apply_for_benefit(client: httpx.Client, run: BenefitRun | None = None) -> BenefitRun:
    """Fetch the evidence in one bundle, then submit the application, then submit it again."""
    run = run or BenefitRun()
    started = time.perf_counter()
    r = client.post("/v1/bundles", headers={"X-Bus-Purpose": PURPOSE}, json={"parts": [
        {"service": service, "request": {"pinfl": pinfl}} for service, pinfl in EVIDENCE]})
    run.evidence_ms = (time.perf_counter() - started) * 1000
    if r.status_code != 200:
        raise RuntimeError(f"the evidence bundle failed: {r.status_code} {r.text[:200]}")
    run.parts = r.json()["parts"]
    if not _evidence_holds(run.parts):
        return run
    certificate = run.parts[0]["answer"]["payload"]["number"]
    application = {
        "application_id": run.application_id,
        "applicant_pinfl": DILNOZA.pinfl,
        "child_pinfl": BENEFIT_CHILD.pinfl,
        "birth_certificate": certificate,
        "bank_account": BANK_ACCOUNT,
        "evidence": run.numbers,
    }
    for attempt in ("submitted", "retried"):
        setattr(run, attempt, client.post(f"/v1/services/{CHILD_BENEFIT}", json=application,
                                          headers={"X-Bus-Purpose": PURPOSE}))
    return run


def show_child_benefit(console: Console, client: httpx.Client, verify: Verify,
                       recorded: Callable[[str], int]) -> bool:
    """Run ``apply_for_benefit`` and print it; True when the evidence verified, the receipt
    came signed by the agency, and the retry got the same receipt with one record kept
    (``recorded(application_id)``: how many the agency's database holds)."""
    run = apply_for_benefit(client)
    table = Table(title=f"Transactional: a child-birth benefit application, its evidence "
                        f"once-only in one bundle ({run.evidence_ms:.0f} ms), then submitted",
                  title_justify="left")
    for column in ("step", "service", "subject", "outcome", "signature", "number"):
        table.add_column(column, no_wrap=column != "outcome")
    ok = _evidence_holds(run.parts)
    for (service, pinfl), part in zip(EVIDENCE, run.parts, strict=True):
        signed = part["status"] == 200 and verify(service.split("/")[0], part["answer"])
        ok &= signed
        outcome = f"200 {summary(service, part['answer']['payload'])}" if part["status"] == 200 \
            else f"{part['status']} {part['problem']['code']}"
        table.add_row("evidence", service, mask_identifier(pinfl), outcome,
                      "[green]verified[/green]" if signed else "[red]INVALID[/red]",
                      part.get("number") or "-", style="" if signed else "red")
    receipts = []
    for step, r in (("application", run.submitted), ("same again", run.retried)):
        if r is None:
            table.add_row(step, CHILD_BENEFIT, mask_identifier(DILNOZA.pinfl),
                          "not sent: the evidence does not hold", "-", "-", style="red")
            ok = False
            continue
        body = r.json()
        signed = r.status_code == 200 and verify("social-protection", body)
        ok &= signed
        receipts.append(body.get("payload", {}).get("receipt_number"))
        outcome = f"200 {summary(CHILD_BENEFIT, body['payload'])}" if r.status_code == 200 \
            else f"{r.status_code} {body.get('code')}"
        table.add_row(step, CHILD_BENEFIT, mask_identifier(DILNOZA.pinfl), outcome,
                      "[green]verified[/green]" if signed else "[red]INVALID[/red]",
                      r.headers.get("X-Bus-Request-Number", "-"), style="" if signed else "red")
    console.print(table)
    kept = recorded(run.application_id)
    once = len(receipts) == 2 and receipts[0] is not None and receipts[0] == receipts[1]
    ok &= once and kept == 1
    console.print(
        f"the agency holds {kept} record of application {run.application_id[:8]}…; the retry "
        f"got {'the same receipt' if once else 'ANOTHER RECEIPT'}",
        style="" if once and kept == 1 else "red", highlight=False,
    )
    return ok
