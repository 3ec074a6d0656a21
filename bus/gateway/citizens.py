"""The citizen's "who read my data" report: ``GET /v1/citizens/me/access-log``.

Two ways in. The citizen: ``Authorization: Bearer <ID token>``, an OpenID Connect ID token of
the national identity provider configured under ``citizens:``, verified by
``bus.policy.citizen_token`` (signature against the provider's JWKS, issuer, audience, expiry);
the person is the token's PINFL claim, never anything the request says (``X-Bus-Subject`` with
an ID token is refused), so a citizen sees only their own record; no access right is needed and
the report is recorded as asked by ``citizen:id-token``. A bearer value shaped as a compact JWS
(two dots) takes this path when ``citizens:`` is configured; member API tokens have no dot.
The portal, for back-office use: it authenticates the citizen itself and asks as a member, with
its API token, ``X-Bus-Purpose`` and ``X-Bus-User`` like any service, and the person's PINFL in
``X-Bus-Subject`` (a header, so it is in no URL and no access log), with an access right to
``bus/citizen-access-log/v1`` for that purpose. A refusal on either path (a bad, expired,
foreign or unsigned token: 401) is audited like any other.

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

With ``Accept: text/html`` (a citizen's browser) the report is a page in the language the
request chose (``bus.gateway.i18n``): when, which agency, which official, for what purpose, which
service of which provider, times in the node's time zone. The same verification of an ID token
(``CitizenTokens``, made once per app by ``citizen_tokens``) lets a citizen open their own
documents (``bus.gateway.documents``).
"""
# No "from __future__ import annotations": FastAPI reads the endpoint annotations.

import html
import zoneinfo
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from bus.config.settings import BusSettings
from bus.core.envelope import new_id
from bus.core.errors import MalformedRequest
from bus.gateway.html import page, utc_offset, when
from bus.gateway.i18n import Lang, choose
from bus.gateway.params import NOT_A_PERSON, PURPOSE_PATTERN, USER_PATTERN, personal_identifier
from bus.node.wiring import Node
from bus.policy.access import CITIZEN_ACCESS_LOG
from bus.policy.citizen_token import CitizenTokens, looks_like_id_token
from bus.records.audit import AuditEntry, handed_out
from schemas import mask_identifier
from schemas.identifiers import validate_pinfl

__all__ = [
    "CITIZEN_CLIENT",
    "CITIZEN_LOG_PATH",
    "CITIZEN_PURPOSE",
    "CITIZEN_USER",
    "citizen_routes",
    "citizen_tokens",
    "report",
    "report_page",
]

CITIZEN_LOG_PATH = "/v1/citizens/me/access-log"
# How a citizen's own report (ID token) is recorded: no member asked, the person did.
CITIZEN_CLIENT = "citizen:id-token"
CITIZEN_PURPOSE = "citizen-request"
CITIZEN_USER = "citizen"


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


def citizen_tokens(node: Node) -> CitizenTokens | None:
    """The verifier of citizens' ID tokens (``citizens:``), or None when none is configured."""
    citizens = node.settings.citizens
    return CitizenTokens(citizens, clock=node.seal.clock) if citizens is not None else None


def report_page(shown: dict[str, Any], lang: Lang, zone: str, now: Any) -> Response:
    """The report (``access_log``'s answer) as a page a person reads, in ``lang``."""
    e = html.escape

    def agency(member: dict[str, str | None]) -> str:
        return f"{member['name']} ({member['code']})" if member["name"] else str(member["code"])

    columns = ("when", "agency", "official", "purpose", "service")
    rows = "".join(
        "<tr>"
        f"<td data-label='{lang.t('report.when')}'>{when(str(x['when']), zone, offset=False)}</td>"
        f"<td data-label='{lang.t('report.agency')}'>{e(agency(x['agency']))}</td>"
        f"<td data-label='{lang.t('report.official')}'>{e(str(x['official']))}</td>"
        f"<td data-label='{lang.t('report.purpose')}'><code>{e(str(x['purpose']))}</code></td>"
        f"<td data-label='{lang.t('report.service')}'>{e(x['service_title'] or x['service'])}"
        f"<br>{lang.t('report.from', provider=agency(x['provider']))}</td></tr>"
        for x in shown["entries"]
    )
    head = "".join(f"<th scope='col'>{lang.t('report.' + c)}</th>" for c in columns)
    listing = (
        f"<table class='list'><caption class='sr'>{lang.t('report.title')}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        if shown["entries"] else f"<p>{lang.t('report.none')}</p>"
    )
    offset = utc_offset(now.astimezone(zoneinfo.ZoneInfo(zone)))
    body = (
        f"<h1>{lang.t('report.title')}</h1>"
        f"<p>{lang.t('report.intro', subject=shown['subject'], count=shown['count'])} "
        f"{lang.t('report.zone', zone=zone, offset=offset)}</p>{listing}"
    )
    return page(lang.plain("report.title"), body, lang=lang)


def citizen_routes(
    node: Node, auth: Callable[..., Awaitable[str]], tokens: CitizenTokens | None
) -> APIRouter:
    router = APIRouter(tags=["citizens"])

    @router.get(
        CITIZEN_LOG_PATH,
        summary="Who obtained data about a person (for the citizen, or the portal)",
        response_model=dict[str, Any],  # JSON; a page with Accept: text/html
    )
    async def access_log(
        request: Request,
        authorization: Annotated[
            str | None,
            Header(description="Bearer <the citizen's ID token> or Bearer <member API token>"),
        ] = None,
        subject: Annotated[
            str | None,
            Header(alias="X-Bus-Subject", max_length=14,
                   description="the person's PINFL (member token only)"),
        ] = None,
        purpose: Annotated[
            str | None,
            Header(alias="X-Bus-Purpose", pattern=PURPOSE_PATTERN,
                   description="purpose code (member token only)"),
        ] = None,
        user: Annotated[
            str | None,
            Header(alias="X-Bus-User", pattern=USER_PATTERN,
                   description="on whose behalf (member token only)"),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> Any:
        scope = request.scope
        bearer = (authorization or "").removeprefix("Bearer ").strip()
        if tokens is not None and looks_like_id_token(bearer):
            # the citizen, from their ID token: the PINFL is the token's, never the request's
            scope["bus.client"] = CITIZEN_CLIENT  # refusals are audited under it
            if subject is not None:
                raise MalformedRequest(
                    "X-Bus-Subject is not taken with an ID token: the person is the token's"
                )
            pinfl = (await run_in_threadpool(tokens.verify, bearer)).pinfl
            scope["bus.subject"] = pinfl
            client, purpose, user = CITIZEN_CLIENT, CITIZEN_PURPOSE, CITIZEN_USER
        else:  # the portal, for back-office use: its token, purpose, official and the PINFL
            client = await auth(request, authorization)
            missing = [name for name, value in (("X-Bus-Subject", subject),
                                                ("X-Bus-Purpose", purpose),
                                                ("X-Bus-User", user)) if value is None]
            if missing:
                raise MalformedRequest("missing or invalid header(s): " + ", ".join(missing))
            assert subject is not None and purpose is not None and user is not None
            if personal_identifier(user):
                raise MalformedRequest(NOT_A_PERSON)
            try:
                pinfl = validate_pinfl(subject)
            except ValueError as exc:
                raise MalformedRequest(f"X-Bus-Subject: {exc}") from None
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
        shown = {"subject": mask_identifier(pinfl), "count": len(found), "entries": found}
        if "text/html" in request.headers.get("accept", ""):  # a citizen's browser
            lang = choose(request.query_params, request.headers, node.settings.node.language)
            return report_page(shown, lang, node.settings.node.time_zone, node.seal.clock())
        return shown

    return router
