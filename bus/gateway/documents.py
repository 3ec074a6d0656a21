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

After the retention period (``documents.retention_days``, ``bus.records.documents``) the signed
answer
is gone: ``/verify`` still shows what was issued, the fingerprint and that it is no longer
kept; ``/v1/documents/{number}`` answers 410 ``document-purged``.
"""
# No "from __future__ import annotations": FastAPI reads the endpoint annotations.

import base64
import html
import io
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

import orjson
import qrcode
from fastapi import APIRouter, Depends, Request
from qrcode.image.pure import PyPNGImage
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from bus.core.errors import BusUnavailable, DocumentPurged, UnknownDocument
from bus.gateway.html import HEADERS, flatten, label_of, page, table, when
from bus.node.wiring import Node
from bus.records.documents import DocumentRecord, DocumentStatus, public_view, status

__all__ = ["document_routes", "qr_png"]

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


def _signature_line(st: DocumentStatus) -> str:
    css = "ok" if st.valid else "gone" if st.state == "purged" else "bad"
    word = {
        "valid": "valid",
        "revoked": "REVOKED",
        "untrusted": "NOT TRUSTED",
        "purged": "no longer kept",
    }.get(st.state, "INVALID")
    return f'<b class="{css}">{word}</b> — {html.escape(st.detail)}'


_NAV = "<a href='/verify'>Check a document</a>"


def _check_form(number: str = "") -> str:
    return (
        "<form method='get' action='/verify'><label for='number'>Request number"
        "<span class='hint' id='number-hint'>as printed on the document, e.g. "
        "BUS-2026-000123-7</span></label>"
        f"<input id='number' name='number' value='{html.escape(number[:40])}' "
        "aria-describedby='number-hint' autocomplete='off' spellcheck='false'>"
        "<button type='submit'>Check</button></form>"
    )


def document_routes(node: Node, auth: Callable[..., Awaitable[str]]) -> APIRouter:
    router = APIRouter(tags=["documents"])
    settings = node.settings
    zone = settings.node.time_zone

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

    @router.get("/verify", summary="Check a document: the form to type its request number",
                include_in_schema=False)
    async def check(request: Request, number: str = "") -> Response:
        typed = number.strip().upper()
        if typed:
            return RedirectResponse(f"/verify/{quote(typed, safe='')}", status_code=303)
        body = ("<h1>Check a document</h1><p>Type the request number printed on the document "
                "to see who issued it, when, and whether its signature still stands. Scanning "
                f"its QR code opens the same page.</p>{_check_form()}")
        return page("Check a document", body)

    @router.get("/verify/{number}", summary="Verify a document by its request number (public)")
    async def verify(number: str, request: Request) -> Response:
        try:
            record = await run_in_threadpool(node.documents.get, number)
        except UnknownDocument as exc:
            if not _wants_html(request):
                raise
            body = (
                f"<h1>No such document</h1><p>{html.escape(exc.detail)}.</p>"
                f"<p>Number asked: <code>{html.escape(number[:40])}</code></p>"
                f"<h2>Check the number again</h2>{_check_form(number)}"
            )
            return page("No such document", body, 404, nav=_NAV)
        st = await run_in_threadpool(status, node.seal, record)
        view = {**public_view(record, st), "names": names(record)}
        if _wants_json(request):
            return Response(orjson.dumps(view), headers=HEADERS, media_type="application/json")
        shown = names(record)
        rows = [
            ("Request number", f"<code>{html.escape(record.number)}</code>"),
            ("Service", html.escape(shown["service"])),
            ("Issued by", html.escape(shown["provider"])),
            ("Requested by", html.escape(shown["client"])),
            ("Issued at", when(record.issued_at, zone)),
            ("Signature (checked now)", _signature_line(st)),
            ("Document fingerprint (SHA-256)", f"<code>{record.fingerprint}</code>"),
        ]  # fmt: skip
        if st.serial:  # the signer's certificate, when it is known (not a bare key, not revoked)
            until = when(st.certificate_expires, zone) if st.certificate_expires else "—"
            rows.insert(-1, ("Certificate",
                             f"<code>{html.escape(st.serial)}</code>, valid until {until}"))
        body = (
            f"<h1>Document {html.escape(record.number)}</h1>{table(rows)}"
            "<p>This page shows who issued the document and whether its signature still "
            "verifies; the document's content is shown only to whom it was issued. Compare the "
            "fingerprint with the one printed on the document.</p>"
        )
        return page(f"Document {record.number}", body, nav=_NAV)

    @router.get("/v1/documents/{number}", summary="The document of an answer, for its client")
    async def document(
        number: str, request: Request, client: Annotated[str, Depends(auth)]
    ) -> Response:
        record = await run_in_threadpool(node.documents.get, number)
        if record.client != client:
            raise UnknownDocument(f"no document {record.number} was issued to {client}")
        if record.purged:
            raise DocumentPurged(
                f"the signed answer of {record.number} was deleted on "
                f"{str(record.purged_at)[:10]} after the retention period"
            )
        if _wants_json(request):
            headers = {**HEADERS, "X-Bus-Request-Number": record.number}
            return Response(record.envelope, headers=headers, media_type="application/json")
        st = await run_in_threadpool(status, node.seal, record)
        url = verify_url(record.number)
        qr = base64.b64encode(await run_in_threadpool(qr_png, url)).decode("ascii")
        payload = orjson.loads(record.envelope).get("payload", {})
        shown = names(record)
        head = [
            ("Request number", f"<b>{html.escape(record.number)}</b>"),
            ("Issued by", html.escape(shown["provider"])),
            ("Requested by", html.escape(shown["client"])),
            ("Issued at", when(record.issued_at, zone)),
        ]
        data = [(label_of(k), html.escape(v)) for k, v in flatten(payload)]
        foot = [
            ("Signature", _signature_line(st)),
            ("Fingerprint (SHA-256)", f"<code>{record.fingerprint}</code>"),
            ("Verify at", f"<code>{html.escape(url)}</code>"),
        ]
        body = (
            f"<h1>{html.escape(shown['service'])}</h1>{table(head)}<h2>Data</h2>{table(data)}"
            f"<h2>Verification</h2>{table(foot)}"
            f'<p><img alt="QR code: {html.escape(url)}" src="data:image/png;base64,{qr}"></p>'
            "<p>Issued through the interagency data-exchange bus with a digital signature "
            "instead of a seal. Scan the code or open the address to check it.</p>"
        )
        return page(f"{shown['service']} — {record.number}", body, nav=_NAV)

    return router
