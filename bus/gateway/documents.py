"""HTTP pages of documents: the public verification page and the client's rendered document.

``GET /verify/{number}`` — public, no token: what was issued (service, provider, client), when,
the document's fingerprint (SHA-256 of the signed answer) and whether its signature stands now,
re-verified against the node's trust store. Never the payload, the subject or the user: an
anonymous visitor learns nothing about the person the paper does not show already. HTML, or
JSON with ``Accept: application/json``; a number that is malformed, mistyped (check digit) or
not issued here is a 404 (problem+json, or an HTML page for browsers, with the form to type
it again). ``GET /verify`` is that form: a citizen types the number printed on the paper
(``?number=`` leads to ``/verify/{number}``). Times are shown in the node's time zone.

``GET /v1/documents/{number}`` — the client who asked (its API token) gets the document: HTML
with the data, the request number and an inline QR code (PNG data URI) that leads to
``{documents.public_url}/verify/{number}``; with ``Accept: application/json``, the signed answer
itself, byte for byte (what ``run_bus.py verify FILE`` checks offline). Another member gets 404.
So does the person the document is about, with ``Authorization: Bearer <ID token>`` of the
national identity provider (verified as for their access report, ``bus.gateway.citizens``):
the document's ``subject_key`` (the audit log's keyed hash of its subject) must be the token
PINFL's, else 404 as for a foreign member; documents recorded before the key was kept are
nobody's. Each citizen's reading, and each refusal of one, is in the audit log (client
``citizen:id-token``, service ``bus/citizen-document/v1``, correlation the document's request
id) before the answer is given.

Pages are in the language the request chose (``bus.gateway.i18n``: ``?lang=``,
``Accept-Language``, the node's ``node.language``), which an asked ``?lang=`` keeps through the
form. Field labels made from the shared schemas, and the technical details of a failed
signature, stay as they are.

After the retention period (``documents.retention_days``, ``bus.records.documents``) the signed
answer
is gone: ``/verify`` still shows what was issued, the fingerprint and that it is no longer
kept; ``/v1/documents/{number}`` answers 410 ``document-purged``.
"""
# No "from __future__ import annotations": FastAPI reads the endpoint annotations.

import base64
import datetime as dt
import html
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

import orjson
import qrcode
from fastapi import APIRouter, Depends, Header, Request
from qrcode.image.pure import PyPNGImage
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from bus.core.envelope import new_id
from bus.core.errors import BusError, BusUnavailable, DocumentPurged, UnknownDocument
from bus.gateway.citizens import CITIZEN_CLIENT, CITIZEN_PURPOSE, CITIZEN_USER
from bus.gateway.html import HEADERS, flatten, label_of, page, table, when
from bus.gateway.i18n import Lang, choose
from bus.node.wiring import Node
from bus.policy.citizen_token import CitizenTokens, looks_like_id_token
from bus.records.documents import (
    DocumentRecord,
    DocumentStatus,
    number_fault,
    public_view,
    status,
)

__all__ = ["CITIZEN_DOCUMENT", "document_routes", "qr_png"]

CITIZEN_DOCUMENT = "bus/citizen-document/v1"  # the audit's service of a citizen's reading
_EXAMPLE = "BUS-2026-000123-7"
_STATES = ("valid", "revoked", "untrusted", "purged")


def qr_png(text: str) -> bytes:
    """A QR code of ``text`` as PNG bytes."""
    qr = qrcode.QRCode(box_size=5, border=4)  # the quiet zone a camera needs
    qr.add_data(text)
    qr.make(fit=True)
    out = io.BytesIO()
    qr.make_image(image_factory=PyPNGImage).save(out)
    return out.getvalue()


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _signature_line(st: DocumentStatus, record: DocumentRecord, lang: Lang,
                    now: dt.datetime) -> str:
    css = "ok" if st.valid else "gone" if st.state == "purged" else "bad"
    word = lang.t(f"signature.{st.state if st.state in _STATES else 'invalid'}")
    if st.state == "valid" and st.signer and st.kid:
        detail = lang.t("signature.signed_by", signer=st.signer, kid=st.kid)
        expires = st.certificate_expires
        if expires and dt.datetime.fromisoformat(expires) < now:
            detail += f" ({lang.t('signature.expired_since')})"
    elif st.state == "purged":
        detail = lang.t("signature.deleted", date=str(record.purged_at)[:10])
    else:  # why a signature does not stand: the verifier's own (technical) words
        detail = html.escape(st.detail)
    return f'<b class="{css}">{word}</b> — {detail}'


def _nav(lang: Lang) -> str:
    return f"<a href='/verify{lang.query}'>{lang.t('verify.title')}</a>"


def _check_form(lang: Lang, number: str = "") -> str:
    keep = f"<input type='hidden' name='lang' value='{lang.code}'>" if lang.asked else ""
    return (
        f"<form method='get' action='/verify'>{keep}<label for='number'>"
        f"{lang.t('verify.number')}<span class='hint' id='number-hint'>"
        f"{lang.t('verify.number_hint', example=_EXAMPLE)}</span></label>"
        f"<input id='number' name='number' value='{html.escape(number[:40])}' "
        "aria-describedby='number-hint' autocomplete='off' spellcheck='false'>"
        f"<button type='submit'>{lang.t('verify.check')}</button></form>"
    )


@dataclass(frozen=True)
class _Reader:
    """Who opens a document: a member (its API token) or a citizen (their ID token)."""

    client: str | None = None
    pinfl: str | None = None


def document_routes(node: Node, auth: Callable[..., Awaitable[str]],
                    tokens: CitizenTokens | None) -> APIRouter:
    router = APIRouter(tags=["documents"])
    settings = node.settings
    zone = settings.node.time_zone

    def language(request: Request) -> Lang:
        return choose(request.query_params, request.headers, settings.node.language)

    def names(record: DocumentRecord) -> dict[str, str]:
        def member(code: str) -> str:
            m = settings.members.get(code)
            return f"{m.name} ({code})" if m is not None and m.name else code

        service = settings.services.get(record.service)
        title = service.title if service is not None and service.title else record.service
        return {
            "service": title,
            "provider": member(record.provider),
            "client": member(record.client),
        }

    def verify_url(number: str) -> str:
        """Where a citizen verifies ``number``: from ``documents.public_url`` only, so a forged
        Host header cannot point a document's QR code at another site."""
        base = settings.documents.public_url
        if base is None:  # the loader requires it on a gateway; a node built by hand may lack it
            raise BusUnavailable("documents.public_url is not configured: no verify URL to print")
        return f"{base.rstrip('/')}/verify/{number}"

    async def audit_citizen(pinfl: str | None, outcome: str,
                            record: DocumentRecord | None = None) -> None:
        """A citizen's reading (or its refusal), durable before the answer is given."""
        entry = node.audit.refusal(  # a gateway-side entry; "ok" for a reading given
            message_id=new_id(), correlation=record.message_id if record else None,
            client=CITIZEN_CLIENT, service=CITIZEN_DOCUMENT, user=CITIZEN_USER,
            purpose=CITIZEN_PURPOSE, subject=pinfl, outcome=outcome, at=node.seal.clock())
        if outcome == "ok":
            await run_in_threadpool(node.audit.write, entry)
        else:
            await node.audit.record_refusal(entry)

    async def reader(
        request: Request,
        authorization: Annotated[str | None, Header(
            description="Bearer <member API token> or Bearer <the citizen's ID token>")] = None,
    ) -> _Reader:
        bearer = (authorization or "").removeprefix("Bearer ").strip()
        if tokens is None or not looks_like_id_token(bearer):
            return _Reader(client=await auth(request, authorization))
        request.scope["bus.client"] = CITIZEN_CLIENT
        try:
            citizen = await run_in_threadpool(tokens.verify, bearer)
        except BusError as exc:  # an untrusted token names nobody
            await audit_citizen(None, exc.code)
            raise
        return _Reader(pinfl=citizen.pinfl)

    @router.get("/verify", summary="Check a document: the form to type its request number",
                include_in_schema=False)
    async def check(request: Request, number: str = "") -> Response:
        lang = language(request)
        typed = number.strip().upper()
        if typed:
            return RedirectResponse(f"/verify/{quote(typed, safe='')}{lang.query}",
                                    status_code=303)
        body = (f"<h1>{lang.t('verify.title')}</h1><p>{lang.t('verify.intro')}</p>"
                f"{_check_form(lang)}")
        return page(lang.plain("verify.title"), body, lang=lang)

    @router.get("/verify/{number}", summary="Verify a document by its request number (public)")
    async def verify(number: str, request: Request) -> Response:
        lang = language(request)
        try:
            record = await run_in_threadpool(node.documents.get, number)
        except UnknownDocument:
            if not _wants_html(request):
                raise
            fault = number_fault(number)
            why = (lang.t("verify.malformed", example=_EXAMPLE) if fault == "malformed"
                   else lang.t("verify.mistyped") if fault == "mistyped"
                   else lang.t("verify.unknown", number=number.strip().upper()[:40]))
            body = (
                f"<h1>{lang.t('verify.none')}</h1><p>{why}</p>"
                f"<p>{lang.t('verify.asked')} <code>{html.escape(number[:40])}</code></p>"
                f"<h2>{lang.t('verify.again')}</h2>{_check_form(lang, number)}"
            )
            return page(lang.plain("verify.none"), body, 404, nav=_nav(lang), lang=lang)
        st = await run_in_threadpool(status, node.seal, record)
        view = {**public_view(record, st), "names": names(record)}
        if _wants_json(request):
            return Response(orjson.dumps(view), headers=HEADERS, media_type="application/json")
        shown = names(record)
        rows = [
            (lang.t("verify.number"), f"<code>{html.escape(record.number)}</code>"),
            (lang.t("verify.service"), html.escape(shown["service"])),
            (lang.t("verify.issued_by"), html.escape(shown["provider"])),
            (lang.t("verify.requested_by"), html.escape(shown["client"])),
            (lang.t("verify.issued_at"), when(record.issued_at, zone)),
            (lang.t("verify.signature_now"),
             _signature_line(st, record, lang, node.seal.clock())),
            (lang.t("verify.fingerprint"), f"<code>{record.fingerprint}</code>"),
        ]
        if st.serial:  # the signer's certificate, when it is known (not a bare key, not revoked)
            until = when(st.certificate_expires, zone) if st.certificate_expires else "—"
            rows.insert(-1, (lang.t("verify.certificate"),
                             f"<code>{html.escape(st.serial)}</code>, "
                             f"{lang.t('verify.valid_until')} {until}"))
        title = lang.plain("verify.document", number=record.number)
        body = f"<h1>{html.escape(title)}</h1>{table(rows)}<p>{lang.t('verify.explain')}</p>"
        return page(title, body, nav=_nav(lang), lang=lang)

    @router.get("/v1/documents/{number}",
                summary="The document of an answer, for its client or the person it is about")
    async def document(
        number: str, request: Request, who: Annotated[_Reader, Depends(reader)]
    ) -> Response:
        record = await run_in_threadpool(node.documents.get, number)
        if who.pinfl is not None:
            if not record.about(node.audit.subject_key(who.pinfl)):
                await audit_citizen(who.pinfl, UnknownDocument.code, record)
                raise UnknownDocument(f"no document {record.number} is about you")
        elif record.client != who.client:
            raise UnknownDocument(f"no document {record.number} was issued to {who.client}")
        if record.purged:
            raise DocumentPurged(
                f"the signed answer of {record.number} was deleted on "
                f"{str(record.purged_at)[:10]} after the retention period"
            )
        if who.pinfl is not None:
            await audit_citizen(who.pinfl, "ok", record)
        if _wants_json(request):
            headers = {**HEADERS, "X-Bus-Request-Number": record.number}
            return Response(record.envelope, headers=headers, media_type="application/json")
        return await rendered(record, language(request))

    async def rendered(record: DocumentRecord, lang: Lang) -> Response:
        """The document as a page: its data, number, signature state and QR code."""
        st = await run_in_threadpool(status, node.seal, record)
        url = verify_url(record.number)
        qr = base64.b64encode(await run_in_threadpool(qr_png, url)).decode("ascii")
        payload = orjson.loads(record.envelope).get("payload", {})
        shown = names(record)
        head = [
            (lang.t("verify.number"), f"<b>{html.escape(record.number)}</b>"),
            (lang.t("verify.issued_by"), html.escape(shown["provider"])),
            (lang.t("verify.requested_by"), html.escape(shown["client"])),
            (lang.t("verify.issued_at"), when(record.issued_at, zone)),
        ]
        data = [(label_of(k), html.escape(v)) for k, v in flatten(payload)]
        foot = [
            (lang.t("document.signature"),
             _signature_line(st, record, lang, node.seal.clock())),
            (lang.t("document.fingerprint"), f"<code>{record.fingerprint}</code>"),
            (lang.t("document.verify_at"), f"<code>{html.escape(url)}</code>"),
        ]
        body = (
            f"<h1>{html.escape(shown['service'])}</h1>{table(head)}"
            f"<h2>{lang.t('document.data')}</h2>{table(data)}"
            f"<h2>{lang.t('document.verification')}</h2>{table(foot)}"
            f'<p><img alt="{lang.t("document.qr", url=url)}" '
            f'src="data:image/png;base64,{qr}"></p><p>{lang.t("document.footer")}</p>'
        )
        return page(f"{shown['service']} — {record.number}", body, nav=_nav(lang), lang=lang)

    return router
