"""HTTP pages of documents: the public verification page and the client's rendered document.

``GET /verify/{number}`` — public, no token: what was issued (service, provider, client), when,
the document's fingerprint (SHA-256 of the signed answer) and whether its signature stands now,
re-verified against the node's trust store. Never the payload, the subject or the user: an
anonymous visitor learns nothing about the person the paper does not show already. HTML, or
JSON with ``Accept: application/json``; a number that is malformed, mistyped (check digit) or
not issued here is a 404 (problem+json, or an HTML page for browsers).

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

import orjson
import qrcode
from fastapi import APIRouter, Depends, Request
from qrcode.image.pure import PyPNGImage
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from bus.core.errors import BusUnavailable, DocumentPurged, UnknownDocument
from bus.gateway.html import HEADERS, flatten, page, table
from bus.node.wiring import Node
from bus.records.documents import DocumentRecord, DocumentStatus, public_view, status

__all__ = ["document_routes", "qr_png"]

def qr_png(text: str) -> bytes:
    """A QR code of ``text`` as PNG bytes."""
    qr = qrcode.QRCode(box_size=4, border=2)
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


def document_routes(node: Node, auth: Callable[..., Awaitable[str]]) -> APIRouter:
    router = APIRouter(tags=["documents"])
    settings = node.settings

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
            )
            return page("No such document", body, 404)
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
            ("Issued at", html.escape(record.issued_at)),
            ("Signature (checked now)", _signature_line(st)),
            ("Certificate", html.escape(f"{st.serial or '—'}, valid until "
                                        f"{st.certificate_expires or '—'}")),
            ("Document fingerprint (SHA-256)", f"<code>{record.fingerprint}</code>"),
        ]  # fmt: skip
        body = (
            f"<h1>Document {html.escape(record.number)}</h1>{table(rows)}"
            "<p>This page shows who issued the document and whether its signature still "
            "verifies; the document's content is shown only to whom it was issued. Compare the "
            "fingerprint with the one printed on the document.</p>"
        )
        return page(f"Document {record.number}", body)

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
            ("Issued at", html.escape(record.issued_at)),
        ]
        data = [(k, html.escape(v)) for k, v in flatten(payload)]
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
        return page(f"{shown['service']} — {record.number}", body)

    return router
