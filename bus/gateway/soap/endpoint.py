"""The SOAP gateway of a node: agencies whose systems are SOAP clients ask services here.

Every service has a WSDL generated from its shared schema, at a stable URL::

    GET  /soap/{member}/{service}/{version}?wsdl     the WSDL (soap:address: this same URL,
                                                     under documents.public_url when set)
    POST /soap/{member}/{service}/{version}          SOAP 1.1, document/literal, wrapped

One operation per service, ``Get<ResponseModel>`` (``GetBirthCertificate``): its input element
carries the request model's fields, its output element ``Get<ResponseModel>Response`` holds
the answer (``<ResponseModel>``), its request number, the message id, and ``SignedAnswer``: the
provider's signed JSON envelope exactly as the HTTP gateway returns it, verifiable with the
provider's certificate (JWS, see docs/architecture.md). Types come from the models' JSON Schema
(``bus.gateway.soap.wsdl``); the patterns and lengths of the shared schema are checked by the bus,
not
written into the WSDL. Namespace:
``urn:bus:service:<member>:<service>:<version>``.

Who asks: ``Authorization: Bearer <member API token>`` (HTTP, as on the HTTP gateway). On whose
behalf and why: the SOAP header ``BusContext`` (``Purpose``, ``User``, optional
``Correlation``; namespace ``urn:bus:soap:v1``, declared in the WSDL), or else the HTTP headers
``X-Bus-Purpose`` and ``X-Bus-User``, checked as on the HTTP gateway (``bus.gateway.params``:
a ``User`` holding a PINFL- or STIR-shaped run of digits is a Client Fault, never echoed).
An unsigned body is accepted (the token authenticates the client, and the bus signs the
envelope as the client). A body signed with XMLDSig goes
through ``bus.gateway.soap.signed.SignedRequests`` first: signed by the member the token names with
a
key certified by the bus CA (``signing.xml.SoapVerifier``), with a WS-Security
``wsu:Timestamp`` signed too, whose ``Created`` is not beyond the node's clock skew
(``trust.max_clock_skew_s``) ahead, whose ``Expires`` has not passed and is at most 5 minutes
after ``Created`` (else ``expired``), and whose signed content was not received before, in
the node's ``ReplayGuard`` until it expires (else ``replayed``); only the signed Body is read
then, with the signed ``BusContext``. A signed request must sign its ``BusContext`` too
(``SoapSigner`` does): one present but not signed is refused (``signature-invalid``, reason
``unsigned-context``), and so is a signed request without one, since purpose and user then
come only from the signed ``BusContext``: the HTTP headers ``X-Bus-Purpose``, ``X-Bus-User``,
``X-Bus-Correlation`` and ``?mode=`` are ignored for a signed request (as they are whenever a
``BusContext`` is present), never trusted beside a signature that cannot cover them. Requests
are read with the hardened parser (``signing.xml.parse_xml``), bodies are bounded by the
gateway's body limit.

Asynchronous (``Mode`` ``async`` in ``BusContext``, or ``?mode=async`` with the HTTP headers):
the answer comes at once with ``MessageId`` and ``State`` ``pending``; the second operation,
``GetResult`` (``MessageId``), returns ``State`` ``pending`` or the same output as a
synchronous call (or its Fault). Results are kept by ``bus.gateway.asynchronous`` (shared with the
HTTP gateway's ``/v1/messages/{id}``), visible only to the client who asked.

A header block marked ``mustUnderstand="1"`` (and addressed to this node: no ``actor``, or
``…/soap/actor/next``) other than ``BusContext`` and ``wsse:Security`` is refused before
anything is done, with the fault code ``soap:MustUnderstand`` (bus code ``must-understand``).
Only SOAP 1.1 is served; a SOAP 1.2 envelope is refused as malformed.

Refusals are SOAP 1.1 Faults (HTTP 500): ``faultcode`` ``soap:Client.<code>`` for the caller's
fault and ``soap:Server.<code>`` otherwise, where ``<code>`` is the bus error code (the same as
the problem ``type`` of the HTTP gateway), ``faultstring`` the detail, and
``detail/bus:Error`` with ``Code``, ``Status`` and ``Type``. As on the HTTP gateway, each
refusal of a request to a configured service is written to the audit log (``side``
``gateway``, the error code as ``outcome``; by the ask pipeline, or for a refusal before it by
``Asking.record_refusal`` from the request's ``AskContext``, filled in as the request is read)
and is durable before the Fault is sent: client
(``-`` before the token is known), purpose and user (from ``BusContext`` or the HTTP headers,
``-`` if not read yet), correlation, the subject as the audit log's keyed hash once the request
was read, never the payload. Not recorded here: an error the provider answered (its node
recorded it) and the Fault of ``GetResult`` (that request's entry exists already).
"""
# No "from __future__ import annotations": FastAPI reads the endpoint annotations.

import logging
import re
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from lxml import etree
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from bus.config.routes import Route
from bus.core.envelope import SERVICE_PATTERN
from bus.core.errors import (
    PROBLEM_TYPE_BASE,
    BusError,
    HeaderNotUnderstood,
    MalformedRequest,
    RequestRefused,
    SignatureInvalid,
    UnknownDocument,
    UnknownService,
    from_code,
)
from bus.exchange.asking import AskContext, Asking
from bus.gateway.asynchronous import AsyncRequests
from bus.gateway.params import (
    CORRELATION_PATTERN,
    NOT_A_PERSON,
    PURPOSE_PATTERN,
    USER_PATTERN,
    caller_value,
    personal_identifier,
)
from bus.gateway.soap.signed import SignedRequests
from bus.gateway.soap.wsdl import (
    BUS_NS,
    data_to_xml,
    model_schema,
    operation_name,
    service_namespace,
    service_wsdl,
    xml_to_data,
)
from bus.node.wiring import Node
from signing import SigningError
from signing.xml import CONTEXT, SOAP11, WSSE, SoapVerifier, VerifiedSoap, parse_xml

__all__ = ["BUS_NS", "SOAP_PREFIX", "operation_name", "service_namespace", "service_wsdl",
           "soap_routes"]

log = logging.getLogger("bus.gateway")
SOAP_PREFIX = "/soap/"
DS = "http://www.w3.org/2000/09/xmldsig#"
_XML = "text/xml; charset=utf-8"
# The header blocks this gateway processes: its own BusContext and WS-Security (signed requests).
UNDERSTOOD_HEADERS = frozenset({CONTEXT, f"{{{WSSE}}}Security"})
_NEXT = "http://schemas.xmlsoap.org/soap/actor/next"  # SOAP 1.1: the first node to receive it
_DIGITS = re.compile(r"[0-9]{9,}")  # a run that could be a PINFL (14) or a STIR (9)


# ---------------------------------------------------------------------------------------------
# the endpoint


def _envelope(body_child: etree._Element) -> bytes:
    envelope = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"soap": SOAP11})
    etree.SubElement(envelope, f"{{{SOAP11}}}Body").append(body_child)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))


def soap_fault(error: BusError) -> Response:
    """A SOAP 1.1 Fault carrying the bus error code (see the module docstring)."""
    side = "Client" if isinstance(error, RequestRefused) else "Server"
    fault = etree.Element(f"{{{SOAP11}}}Fault", nsmap={"soap": SOAP11, "bus": BUS_NS})
    code = "MustUnderstand" if isinstance(error, HeaderNotUnderstood) else f"{side}.{error.code}"
    etree.SubElement(fault, "faultcode").text = f"soap:{code}"
    etree.SubElement(fault, "faultstring").text = error.detail
    detail = etree.SubElement(etree.SubElement(fault, "detail"), f"{{{BUS_NS}}}Error")
    etree.SubElement(detail, f"{{{BUS_NS}}}Code").text = error.code
    etree.SubElement(detail, f"{{{BUS_NS}}}Status").text = str(error.status)
    etree.SubElement(detail, f"{{{BUS_NS}}}Type").text = PROBLEM_TYPE_BASE + error.code
    return Response(_envelope(fault), status_code=500, media_type=_XML)


def _heard(context: AskContext, purpose: str | None, user: str | None) -> None:
    """What the audit may take of the caller's purpose and user: checked, else ``-``."""
    context.purpose = caller_value(purpose, PURPOSE_PATTERN) or "-"
    context.user = caller_value(user, USER_PATTERN) or "-"


def check_headers(root: etree._Element) -> None:
    """Refuse a header block addressed to this node with ``mustUnderstand="1"`` that the bus
    does not process (SOAP 1.1 section 4.2.3): acting as if it were not there could ignore a
    condition the sender made binding. Blocks for another ``actor`` are not ours to judge. The
    Fault names the block, unless its name holds a run of 9 or more digits (a PINFL or STIR
    could be there: the caller's text is not echoed then)."""
    header = root.find(f"{{{SOAP11}}}Header")
    if header is None:
        return
    for block in header:
        if not isinstance(block.tag, str):
            continue
        must = (block.get(f"{{{SOAP11}}}mustUnderstand") or "0").strip()
        if must not in ("1", "true") or block.get(f"{{{SOAP11}}}actor", _NEXT) != _NEXT:
            continue
        name = etree.QName(block)
        if name.text not in UNDERSTOOD_HEADERS:
            namespace = (name.namespace or "(none)")[:200]
            said = f"the header {name.localname[:80]} of namespace {namespace}"
            if _DIGITS.search(said):  # a name that could carry a PINFL or STIR: not echoed
                said = "a header"
            raise HeaderNotUnderstood(
                f"{said} is marked mustUnderstand but this gateway does not process it; "
                "understood: BusContext (urn:bus:soap:v1) and wsse:Security"
            )


def _is_correlation(value: str) -> bool:
    return caller_value(value, CORRELATION_PATTERN) is not None


def _context(root: etree._Element, request: Request, asked: AskContext,
             verified: VerifiedSoap | None = None) -> None:
    """``asked``'s purpose, user, correlation and mode from the BusContext header, else the HTTP
    headers; for a signed request (``verified``), from the signed BusContext only."""
    if verified is not None:
        context = verified.context
        if context is None:
            raise SignatureInvalid(
                "a signed SOAP request must carry Purpose and User in a signed BusContext "
                "header (the HTTP headers are not covered by the signature)",
                reason="unsigned-context",
            )
    else:
        context = root.find(f"{{{SOAP11}}}Header/{{{BUS_NS}}}BusContext")
    if context is not None:
        purpose = context.findtext(f"{{{BUS_NS}}}Purpose")
        user = context.findtext(f"{{{BUS_NS}}}User")
        correlation = context.findtext(f"{{{BUS_NS}}}Correlation")
        mode = context.findtext(f"{{{BUS_NS}}}Mode") or "sync"
    else:
        purpose = request.headers.get("x-bus-purpose")
        user = request.headers.get("x-bus-user")
        correlation = request.headers.get("x-bus-correlation")
        mode = request.query_params.get("mode", "sync")
    _heard(asked, purpose, user)
    if mode not in ("sync", "async"):
        raise MalformedRequest("Mode must be sync or async")
    if not purpose or not user:
        raise MalformedRequest("BusContext (Purpose, User) or X-Bus-Purpose and X-Bus-User needed")
    if personal_identifier(user):
        said = NOT_A_PERSON.replace("X-Bus-User", "User (BusContext or X-Bus-User)", 1)
        raise MalformedRequest(said)  # never echoing the value
    if asked.purpose != purpose or asked.user != user:  # the same rules as the HTTP headers
        raise MalformedRequest("Purpose must be a purpose code (such as child-benefit) and User "
                               "printable ASCII, 1-200 characters")
    if correlation is not None and not _is_correlation(correlation):
        raise MalformedRequest("Correlation must be a UUID")
    asked.correlation = correlation
    asked.mode = "async" if mode == "async" else "sync"


def soap_routes(
    node: Node, auth: Any, asking: Asking, asynchronous: AsyncRequests | None = None
) -> APIRouter:
    """``GET …?wsdl`` and ``POST`` for every service of ``node``'s router."""
    router = APIRouter(include_in_schema=False)
    routes = {r.service: r for r in node.router.routes()}
    signed = SignedRequests(
        SoapVerifier(node.trust, clock=node.seal.clock), node.replay,
        clock=node.seal.clock, max_skew=node.seal.max_skew,
    )

    def route_of(service: str) -> Route:
        route = routes.get(service)
        if route is None:
            named = caller_value(service, SERVICE_PATTERN)  # echoed only if it is a service id
            raise UnknownService(f"no service {named!r} on this bus" if named
                                 else "no such service on this bus", service=named)
        return route

    @router.get(SOAP_PREFIX + "{service:path}")
    async def wsdl(service: str, request: Request) -> Response:
        try:
            route = route_of(service)
        except BusError as exc:
            return soap_fault(exc)
        base = node.settings.documents.public_url  # never the Host header, when configured
        address = (f"{base}{SOAP_PREFIX}{service}" if base is not None
                   else str(request.url.replace(query="")))
        return Response(service_wsdl(route, address), media_type=_XML)

    @router.post(SOAP_PREFIX + "{service:path}")
    async def ask(service: str, request: Request) -> Response:
        started = time.perf_counter()
        # what the audit entry of a refusal may say, learnt as the request is read
        asked = AskContext("-", "-", "-", async_hint="ask it with mode async",
                           audit_context={"transport": "soap"})
        headers = request.headers
        _heard(asked, headers.get("x-bus-purpose"), headers.get("x-bus-user"))
        if _is_correlation(headers.get("x-bus-correlation", "")):
            asked.correlation = headers["x-bus-correlation"]
        outcome = "ok"
        inflight = node.metrics.inflight(service) if service in routes else None
        if inflight is not None:
            inflight.inc()
        try:
            route = route_of(service)
            asked.client = await auth(request, request.headers.get("authorization"))
            response = await _ask(node, signed, route, asked, request, asking, asynchronous)
            return response
        except BusError as exc:
            outcome = exc.code
            request.scope["bus.outcome"] = exc.code
            asked.client = request.scope.get("bus.client", asked.client)  # also when rate-limited
            asked.message_id = asked.message_id or exc.message_id
            # before authentication bus.gateway.throttle counts and audits it, per source
            # (the pipeline, or the provider's node, recorded its own refusals: ``audited``)
            if service in routes and not asked.audited and "bus.client" in request.scope:
                await asking.record_refusal(routes[service], asked, exc.code)
            return soap_fault(exc)
        finally:
            elapsed = time.perf_counter() - started
            if inflight is not None:
                inflight.dec()
                node.metrics.exchanges(asked.client, service, outcome).inc()
                if asked.sent:
                    node.metrics.exchange_seconds(service).observe(elapsed)
            log.info("exchange", extra={"bus": {
                "transport": "soap", "client": asked.client,
                "service": service if service in routes else "-",  # never a caller's path
                "outcome": outcome, "message_id": asked.message_id,
                "duration_ms": round(elapsed * 1000, 2)}})

    return router


def _answer(route: Route, message_id: str, *, payload: dict[str, Any] | None = None,
            number: str | None = None, signed: bytes | None = None,
            state: str = "done") -> Response:
    ns = service_namespace(route.service)
    answer = etree.Element(f"{{{ns}}}{operation_name(route)}Response", nsmap={None: ns})
    if payload is not None:
        schema, defs = model_schema(route.response_model)
        data_to_xml(etree.SubElement(answer, f"{{{ns}}}{route.response_model.__name__}"), payload,
                schema, defs, ns)
    if number is not None:
        etree.SubElement(answer, f"{{{ns}}}RequestNumber").text = number
    etree.SubElement(answer, f"{{{ns}}}MessageId").text = message_id
    if signed is not None:
        etree.SubElement(answer, f"{{{ns}}}SignedAnswer").text = signed.decode()
    etree.SubElement(answer, f"{{{ns}}}State").text = state
    headers = {"X-Bus-Message-Id": message_id}
    if number is not None:
        headers["X-Bus-Request-Number"] = number
    return Response(_envelope(answer), media_type=_XML, headers=headers)


async def _result(node: Node, route: Route, client: str, element: etree._Element,
                  asynchronous: AsyncRequests | None) -> Response:
    """``GetResult``: the state or result of an asynchronous request of this client."""
    message_id = (element.findtext(f"{{{service_namespace(route.service)}}}MessageId") or "")
    record = None
    if asynchronous is not None and message_id:
        record = await run_in_threadpool(asynchronous.store.get, message_id.strip(), client)
    if record is None or record.service != route.service:
        raise UnknownDocument(f"no asynchronous request {message_id!r} of yours here")
    if record.state == "pending":
        return _answer(route, record.message_id, state="pending")
    body = record.body or b"{}"
    if record.status == 200:
        signed = orjson.loads(body)
        return _answer(route, record.message_id, payload=signed.get("payload"),
                       number=record.number, signed=body)
    problem = orjson.loads(body)
    raise from_code(str(problem.get("code")), str(problem.get("detail", "")),
                    message_id=record.message_id)


async def _ask(
    node: Node, signed: SignedRequests, route: Route, asked: AskContext, request: Request,
    asking: Asking, asynchronous: AsyncRequests | None = None,
) -> Response:
    client = asked.client
    raw = await request.body()
    try:
        root = parse_xml(raw)
    except SigningError as exc:
        raise MalformedRequest(f"not a readable SOAP message ({exc.detail})") from None
    if etree.QName(root).text != f"{{{SOAP11}}}Envelope":
        raise MalformedRequest("not a SOAP 1.1 envelope")
    check_headers(root)
    body = root.find(f"{{{SOAP11}}}Body")
    verified = None
    if root.find(f".//{{{DS}}}Signature") is not None:
        verified = await run_in_threadpool(
            signed.check, raw, client=client, service=route.service
        )
        body = verified.body
    ns = service_namespace(route.service)
    op = operation_name(route)
    parts = [] if body is None else [c for c in body if isinstance(c.tag, str)]
    if len(parts) == 1 and parts[0].tag == f"{{{ns}}}GetResult":
        asked.audited = True  # an earlier request's result: recorded when it was answered
        return await _result(node, route, client, parts[0], asynchronous)
    if len(parts) != 1 or parts[0].tag != f"{{{ns}}}{op}":
        raise MalformedRequest(f"the Body must hold one {op} or GetResult element of {ns}")
    _context(root, request, asked, verified)
    schema, defs = model_schema(route.request_model)
    answer = await asking.ask(route, xml_to_data(parts[0], schema, defs, ns), asked)
    if answer.pending:
        return _answer(route, answer.message_id, state="pending")
    return _answer(route, answer.message_id, payload=answer.payload,
                   number=answer.number, signed=answer.signed)
