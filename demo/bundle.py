"""The demo's once-only application: one bundle request fetches a family's documents at once.

The portal sends ``POST /v1/bundles`` for a social-assistance application (``bus.gateway.bundle``):
the applicant's residence record and property, her child's birth certificate from the SOAP civil
registry, and the residence record of someone the registry does not know. Every provider is
asked at the same time; each part comes back with its own status, the answers each signed by
their agency and checked here with that agency's certificate alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from demo.data import BIRTHS, DILNOZA, UNKNOWN_PINFL
from demo.node_config import CIVIL, PROPERTY, RESIDENCE
from demo.summary import summary
from schemas import mask_identifier

__all__ = ["BUNDLE_PURPOSE", "show_bundle"]

BUNDLE_PURPOSE = "social-assistance"
# what the application needs, and what each part should answer
_PARTS: list[tuple[str, dict[str, str], int]] = [
    (RESIDENCE, {"pinfl": DILNOZA.pinfl}, 200),
    (PROPERTY, {"pinfl": DILNOZA.pinfl}, 200),
    (CIVIL, {"pinfl": BIRTHS[1].pinfl}, 200),  # her daughter
    (RESIDENCE, {"pinfl": UNKNOWN_PINFL}, 404),
]


def show_bundle(console: Console, client: httpx.Client,
                verify: Callable[[str, dict[str, Any]], bool]) -> bool:
    """Send the application's bundle and print each part; True when every part answered as
    expected and every answer's signature verified (``verify(provider, answer)``)."""
    started = time.perf_counter()
    wanted = [{"service": service, "request": request} for service, request, _ in _PARTS]
    r = client.post("/v1/bundles", json={"parts": wanted},
                    headers={"X-Bus-Purpose": BUNDLE_PURPOSE})
    took_ms = (time.perf_counter() - started) * 1000
    if r.status_code != 200:
        console.print(f"[red]bundle: {r.status_code} {r.text[:200]}[/red]")
        return False
    table = Table(title=f"Once-only: one POST /v1/bundles for a {BUNDLE_PURPOSE} application, "
                        f"{len(wanted)} parts asked at once, {took_ms:.0f} ms in all",
                  title_justify="left")
    for column in ("part", "service", "subject", "outcome", "signature", "number"):
        table.add_column(column, no_wrap=column != "outcome")
    ok = True
    for i, (part, (service, request, expect)) in enumerate(
            zip(r.json()["parts"], _PARTS, strict=True), 1):
        if part["status"] == 200:
            signed = verify(service.split("/")[0], part["answer"])
            outcome = f"200 {summary(service, part['answer']['payload'])}"
            signature = "[green]verified[/green]" if signed else "[red]INVALID[/red]"
        else:
            signed = True
            outcome, signature = f"{part['status']} {part['problem']['code']}", "-"
        as_expected = signed and part["status"] == expect
        ok &= as_expected
        table.add_row(str(i), service, mask_identifier(request["pinfl"]), outcome, signature,
                      part.get("number") or "-", style="" if as_expected else "red")
    console.print(table)
    return ok
