"""A citizen opens a document about themselves with an ID token of the demo identity provider
(``GET /v1/documents/{number}``, ``bus.gateway.documents``), the page in Uzbek; another
person's document is refused to them (404), as to a foreign member."""

from __future__ import annotations

import httpx
from rich.console import Console

from bus.node.wiring import Node
from demo.data import PEOPLE
from demo.identity import DemoIdentityProvider
from schemas import mask_identifier

__all__ = ["show_citizen_document"]


def show_citizen_document(console: Console, gateway: str, node: Node, numbers: list[str],
                          identity: DemoIdentityProvider | None) -> bool:
    """One line: the first person's own document (of ``numbers``, the demo's answers), 200 in
    Uzbek, and someone else's, 404; True when both are so (or when there is no identity
    provider)."""
    if identity is None:
        return True
    person = PEOPLE[0]
    key = node.audit.subject_key(person.pinfl)
    records = [node.documents.get(n) for n in numbers]
    own = [r.number for r in records if r.about(key)]
    other = [r.number for r in records if r.subject_key not in (None, key)]
    if not own or not other:
        console.print("[red]citizen document: the demo issued none to compare[/red]")
        return False
    headers = {"Authorization": f"Bearer {identity.id_token(person.pinfl)}",
               "Accept": "text/html", "Accept-Language": "uz"}
    with httpx.Client(base_url=gateway, headers=headers, timeout=10) as citizen:
        mine = citizen.get(f"/v1/documents/{own[0]}")
        foreign = citizen.get(f"/v1/documents/{other[0]}")
    ok = (mine.status_code == 200 and mine.headers.get("content-language") == "uz"
          and foreign.status_code == 404)
    colour = "green" if ok else "red"
    console.print(
        f"citizen {mask_identifier(person.pinfl)} with their ID token: own document {own[0]} "
        f"[{colour}]{mine.status_code}[/{colour}] (page in {mine.headers.get('content-language')}"
        f"), another person's {other[0]} [{colour}]{foreign.status_code}[/{colour}]",
        soft_wrap=True, highlight=False,
    )
    return ok
