"""The citizen's "who read my data" report: ``GET /v1/citizens/me/access-log``.

The portal authenticates the citizen (its job, not the bus's) and asks as a member, with its API
token, ``X-Bus-Purpose`` and ``X-Bus-User`` like any service, and the person's PINFL in
``X-Bus-Subject`` (a header, so it is in no URL and no access log). The portal needs an access
right to ``bus/citizen-access-log/v1`` for that purpose; a refusal is audited like any other.

The entries are found by the PINFL's keyed hash (``AuditLog.subject_key``), so only that
person's entries can come back. Listed: each time data about the person was handed out
(``bus.records.audit.handed_out``: an answer with ``outcome=ok`` of a provider's node or of an
agency's
operator): when, which agency asked (member code and name), which official, for which purpose,
which service of which provider. Refusals, operators' readings of a task and the person's own
reports are in the log but not in the report (``run_bus.py audit subject PINFL --all`` lists
them for an investigator). The report itself is audited (``side=gateway``,
service ``bus/citizen-access-log/v1``) before it is sent. ``run_bus.py audit subject PINFL``
prints the same report from the command line (``report``).
"""
# No "from __future__ import annotations": FastAPI reads the endpoint annotations.

from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from bus.config.settings import BusSettings
from bus.core.envelope import new_id
from bus.core.errors import MalformedRequest
from bus.gateway.params import PurposeHeader, UserHeader
from bus.node.wiring import Node
from bus.policy.access import CITIZEN_ACCESS_LOG
from bus.records.audit import AuditEntry, handed_out
from schemas import mask_identifier
from schemas.identifiers import validate_pinfl

__all__ = ["CITIZEN_LOG_PATH", "citizen_routes", "report"]

CITIZEN_LOG_PATH = "/v1/citizens/me/access-log"


def report(
    entries: Iterable[AuditEntry], settings: BusSettings, limit: int, *, every: bool = False
) -> list[dict[str, Any]]:
    """Who obtained data about one person (their entries given), newest first, for display;
    ``every``: each entry about the person, with its outcome and who wrote it (``side``)."""

    def member(code: str) -> dict[str, str | None]:
        m = settings.members.get(code)
        return {"code": code, "name": m.name if m is not None else None}

    out = []
    for e in entries:
        if not every and (not handed_out(e) or e.service == CITIZEN_ACCESS_LOG):
            continue
        service = settings.services.get(e.service)
        out.append(
            {
                "when": e.requested_at,
                "agency": member(e.client),
                "official": e.user,
                "purpose": e.purpose,
                "service": e.service,
                "service_title": service.title if service is not None else None,
                "provider": member(e.provider),
                "message_id": e.message_id,
                "recorded": e.recorded_at,
                "outcome": e.outcome,
                "side": e.side,
            }
        )
    out.sort(key=lambda item: (str(item["when"]), str(item["recorded"])), reverse=True)
    return out[:limit]


def citizen_routes(node: Node, auth: Callable[..., Awaitable[str]]) -> APIRouter:
    router = APIRouter(tags=["citizens"])

    @router.get(CITIZEN_LOG_PATH, summary="Who obtained data about a person (for the portal)")
    async def access_log(
        request: Request,
        client: Annotated[str, Depends(auth)],
        subject: Annotated[
            str,
            Header(alias="X-Bus-Subject", max_length=14, description="the person's PINFL"),
        ],
        purpose: PurposeHeader,
        user: UserHeader,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        try:
            pinfl = validate_pinfl(subject)
        except ValueError as exc:
            raise MalformedRequest(f"X-Bus-Subject: {exc}") from None
        scope = request.scope
        scope["bus.subject"] = pinfl  # the audit entry of a refusal names whom it was about
        node.access.check(client, CITIZEN_ACCESS_LOG, purpose)
        audit = node.audit
        key = audit.subject_key(pinfl)
        found = await run_in_threadpool(
            lambda: report(audit.store.entries(subject=key), node.settings, limit)
        )
        message_id = new_id()
        scope["bus.message_id"] = message_id
        record = audit.refusal(  # a gateway-side entry; here the outcome is "ok"
            message_id=message_id,
            correlation=None,
            client=client,
            service=CITIZEN_ACCESS_LOG,
            user=user,
            purpose=purpose,
            subject=pinfl,
            outcome="ok",
            at=node.seal.clock(),
        )
        await run_in_threadpool(audit.write, record)  # durable before the answer
        return {"subject": mask_identifier(pinfl), "count": len(found), "entries": found}

    return router
