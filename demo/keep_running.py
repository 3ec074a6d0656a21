"""``run_bus.py demo --keep``: the demo stays up after its exchanges, with an archive request
left for a person to answer at ``/inbox``, and prints where to look and what to try."""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

import httpx
from rich.console import Console

from demo.archive import leave_task
from demo.data import ARCHIVE_BIRTHS, PEOPLE
from demo.node_config import PROPERTY

if TYPE_CHECKING:
    from demo.scenario import DemoStack

__all__ = ["print_try_it", "print_waiting_task", "wait_for_interrupt"]


def print_try_it(console: Console, stack: DemoStack) -> None:
    """Where to look and what to try against the running demo."""
    pinfl = PEOPLE[0].pinfl
    console.print(
        f"\nOpenAPI: {stack.gateway.url}/docs    residence registry: {stack.residence.url}/docs"
    )
    console.print(
        f"Metrics: {stack.gateway.url}/metrics    readiness: {stack.gateway.url}/health/ready"
        f"    live view: python run_bus.py status --url {stack.gateway.url}"
    )
    if stack.numbers:
        number = stack.numbers[0]
        console.print(
            f"Document {number}: {stack.gateway.url}/verify/{number} (public) and "
            f"{stack.gateway.url}/v1/documents/{number} (the portal's token; with "
            "Accept: application/json the signed answer, to check offline with "
            f"`python run_bus.py verify FILE --config {stack.config_path}`)",
            soft_wrap=True,
        )
    console.print(
        f"Audit log: python run_bus.py audit verify --config {stack.config_path}  (also: audit "
        "export --since …, audit subject PINFL)",
        soft_wrap=True,
    )
    console.print(
        f"Operator inbox: {stack.gateway.url}/inbox (archivist / {stack.archivist}, "
        f"passport-officer / {stack.officer}), or "
        f"python run_bus.py inbox list --config {stack.config_path}",
        markup=False, highlight=False, soft_wrap=True,
    )
    console.print("Try (the token is this run's portal token):")
    console.print(
        f"curl -s {stack.gateway.url}/v1/services/{PROPERTY} "
        f"-H 'Authorization: Bearer {stack.token}' -H 'X-Bus-Purpose: housing-subsidy' "
        f"-H 'X-Bus-User: officer-17' -H 'Content-Type: application/json' "
        f'-d \'{{"pinfl": "{pinfl}"}}\'',
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if stack.identity is not None:
        token = stack.identity.id_token(pinfl, lifetime_s=3600)
        console.print("A citizen's own report (an ID token of the demo identity provider, 1 h):")
        console.print(
            f"curl -s {stack.gateway.url}/v1/citizens/me/access-log "
            f"-H 'Authorization: Bearer {token}'",
            markup=False, highlight=False, soft_wrap=True,
        )
    console.print("Ctrl-C stops everything.")


def print_waiting_task(console: Console, stack: DemoStack) -> None:
    """One archive request left open, for a person to answer in the browser."""
    headers = {"Authorization": f"Bearer {stack.token}", "X-Bus-User": "demo-officer-1"}
    with httpx.Client(base_url=stack.gateway.url, headers=headers, timeout=15) as client:
        location = leave_task(client)
    found = ARCHIVE_BIRTHS[0]
    console.print(
        f"A request waits for the archivist: sign in at {stack.gateway.url}/inbox (archivist / "
        f"{stack.archivist}) and answer it; the archive's books say: certificate "
        f"{found.certificate}, {found.surname} {found.given_name} {found.patronymic}, born "
        f"{found.born_on} in {found.place_of_birth} ({found.sex}), parents "
        f"{'; '.join(f'{p.role} {p.full_name}' for p in found.parents)}, registered "
        f"{found.registered_on} at {found.office}. The portal's poll, then signed: "
        f"curl -s {stack.gateway.url}{location} -H 'Authorization: Bearer {stack.token}'",
        markup=False, highlight=False, soft_wrap=True,
    )


def wait_for_interrupt() -> None:
    """Block until Ctrl-C."""
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
