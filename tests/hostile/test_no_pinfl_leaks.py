"""No demo PINFL in anything the node writes or answers about a request, except the answer
itself: a battery of honest and hostile requests, HTTP and SOAP, that carry the demo people's
PINFLs in every place a caller can put one (X-Bus-User and the SOAP BusContext's User included),
then a grep of every log line (at DEBUG), the metrics, every
problem document and response header, the dead letters' reasons and headers, and the audit
export (``run_bus.py audit export``)."""

from __future__ import annotations

import datetime as dt
import io
import time
import uuid

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from bus.cli.app import app as cli
from bus.core.envelope import Envelope
from bus.ops.logs import configure_logging
from bus.transport import Message, service_queue
from demo.data import AZIZ, PEOPLE, UNKNOWN_PINFL
from demo.scenario import CIVIL, PROPERTY, RESIDENCE, DemoStack
from schemas import ResidenceRegistrationRequest

PINFLS = [p.pinfl for p in PEOPLE] + [UNKNOWN_PINFL]
OK = {"X-Bus-Purpose": "child-benefit", "X-Bus-User": "officer-17"}
JSON = {"Content-Type": "application/json"}
XML = {"Content-Type": "text/xml"}


def _soap(pinfl: str, context: str = "", header: str = "", end: str = "</soap:Envelope>") -> str:
    """A request for a birth certificate on the SOAP gateway; ``context``: the BusContext's
    elements (none: the HTTP headers say who asks), ``header``: more header blocks."""
    ns = "urn:bus:service:" + CIVIL.replace("/", ":")
    bus = f'<bus:BusContext xmlns:bus="urn:bus:soap:v1">{context}</bus:BusContext>'
    return (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f"<soap:Header>{bus if context else ''}{header}</soap:Header>"
        f'<soap:Body><GetBirthCertificate xmlns="{ns}"><pinfl>{pinfl}</pinfl>'
        f"</GetBirthCertificate></soap:Body>{end}"
    )


def _soap_battery(pinfl: str) -> list[tuple[str, str, dict[str, str]]]:
    """(path, body, headers) of SOAP requests carrying ``pinfl``."""
    soap = f"/soap/{CIVIL}"
    asked = "<bus:Purpose>child-benefit</bus:Purpose><bus:User>clerk-4</bus:User>"
    return [
        (soap, _soap(pinfl, asked), XML),  # answered (the answer carries it) or no-data
        (soap, _soap(pinfl), {**XML, **OK}),  # who asks, from the HTTP headers
        (soap, _soap(pinfl, f"<bus:Purpose>child-benefit</bus:Purpose><bus:User>{pinfl}"
                            "</bus:User>"), XML),  # a PINFL where an official belongs: refused
        (soap, _soap(pinfl), {**XML, **OK, "X-Bus-User": pinfl}),
        (soap, _soap(pinfl, f"<bus:Purpose>{pinfl}</bus:Purpose><bus:User>clerk-4</bus:User>"),
         XML),
        (soap, _soap(pinfl, f"{asked}<bus:Correlation>{pinfl}</bus:Correlation>"), XML),
        (soap, _soap(pinfl, f"{asked}<bus:Mode>{pinfl}</bus:Mode>"), XML),
        (soap, _soap(pinfl + "0", asked), XML),  # not a PINFL: the schema refuses it
        (soap, _soap(pinfl, asked, f'<x:p{pinfl} xmlns:x="urn:x:{pinfl}" soap:mustUnderstand='
                                   '"1"/>'), XML),  # an unknown header that must be understood
        (soap, _soap(pinfl, asked, end=""), XML),  # not well-formed
        (soap, _soap(pinfl, asked), {"Content-Type": "application/json"}),
        (f"/soap/tax/{pinfl}/v1", _soap(pinfl, asked), XML),
    ]


def _battery(stack: DemoStack, portal: httpx.Client) -> list[httpx.Response]:
    """Every way this suite knows to hand the node a PINFL; the answers."""
    answers: list[httpx.Response] = []

    def ask(method: str, path: str, **kw: object) -> None:
        answers.append(portal.request(method, path, **kw))  # type: ignore[arg-type]

    for pinfl in PINFLS:
        body = {"pinfl": pinfl}
        ask("POST", f"/v1/services/{RESIDENCE}", json=body, headers=OK)  # answered / no-data
        ask("POST", f"/v1/services/{PROPERTY}", json=body,
            headers={**OK, "X-Bus-Purpose": "housing-subsidy"})
        ask("POST", f"/v1/services/{RESIDENCE}", json=body,
            headers={**OK, "X-Bus-Purpose": "marketing"})  # 403, audited with the keyed subject
        ask("POST", f"/v1/services/{RESIDENCE}", json=body,
            headers={**OK, "X-Bus-Purpose": pinfl})  # not a purpose code: 400
        ask("POST", f"/v1/services/{RESIDENCE}", json=body,
            headers={**OK, "X-Bus-Correlation": pinfl})
        ask("POST", f"/v1/services/{RESIDENCE}", json={**body, "extra": pinfl}, headers=OK)
        ask("POST", f"/v1/services/{RESIDENCE}", json={"pinfl": pinfl + "0"}, headers=OK)
        ask("POST", f"/v1/services/{RESIDENCE}", json=body,
            headers={**OK, "X-Bus-User": pinfl})  # a PINFL where an official belongs: 400
        ask("POST", f"/v1/services/{RESIDENCE}", json=body,
            headers={**OK, "X-Bus-User": f"officer {pinfl}"})  # inside other text: 400 too
        ask("POST", f"/v1/services/{RESIDENCE}",
            content=f'{{"pinfl": "{pinfl}", "pinfl": "{pinfl}"}}', headers={**OK, **JSON})
        ask("POST", f"/v1/services/{RESIDENCE}",
            content=f'{{"{pinfl}": 1, "{pinfl}": 2}}', headers={**OK, **JSON})
        ask("POST", f"/v1/services/{RESIDENCE}", content=f'{{"pinfl": "{pinfl}"',
            headers={**OK, **JSON})
        ask("POST", f"/v1/services/{RESIDENCE}", content=f"pinfl={pinfl}",
            headers={**OK, "Content-Type": "application/x-www-form-urlencoded"})
        ask("POST", f"/v1/services/{RESIDENCE}?mode={pinfl}", json=body, headers=OK)
        ask("POST", f"/v1/services/tax/{pinfl}/v1", json=body, headers=OK)
        ask("POST", f"/v1/services/tax/p{pinfl}/v1", json=body, headers=OK)  # a service id's shape
        ask("GET", f"/v1/catalog/tax/p{pinfl}/v1")
        ask("POST", "/v1/bundles", json={"parts": [{"service": f"tax/p{pinfl}/v1",
                                                    "request": body}]}, headers=OK)
        ask("POST", f"/v1/services/{pinfl}", json=body, headers=OK)
        ask("GET", f"/v1/services/{RESIDENCE}", params={"pinfl": pinfl})
        ask("POST", "/v1/bundles", json={"parts": [
            {"service": RESIDENCE, "request": body},
            {"service": PROPERTY, "request": {"pinfl": pinfl[:-1]}},
            {"service": "tax/income/v1", "request": body}]}, headers=OK)
        ask("POST", f"/v1/services/{RESIDENCE}?mode=async", json=body, headers=OK)
        ask("GET", f"/v1/messages/{pinfl}")
        ask("GET", f"/v1/bundles/{pinfl}")
        ask("GET", f"/verify/{pinfl}", headers={"Accept": "application/json"})
        ask("GET", f"/v1/documents/{pinfl}", headers={"Accept": "application/json"})
        ask("GET", "/v1/citizens/me/access-log",
            headers={**OK, "X-Bus-Purpose": "citizen-request", "X-Bus-Subject": pinfl})
        ask("GET", "/v1/citizens/me/access-log",
            headers={**OK, "X-Bus-Purpose": "citizen-request", "X-Bus-Subject": pinfl[:7]})
        ask("POST", "/v1/bundles", json={"parts": [{"service": RESIDENCE, "request": body}]},
            headers={**OK, "X-Bus-User": pinfl})
        for path, soap, headers in _soap_battery(pinfl):
            ask("POST", path, content=soap, headers=headers)
        answers.append(httpx.post(f"{stack.gateway.url}/v1/services/{RESIDENCE}", json=body,
                                  headers={"Authorization": f"Bearer {pinfl}", **OK}))
    return answers


def _dead_letter_with_a_pinfl(stack: DemoStack) -> None:
    """An expired request (a PINFL in its payload) goes to the dead letters."""
    node = stack.node
    assert node.exchanger is not None
    now = dt.datetime.now(dt.UTC)
    envelope = node.exchanger.build(node.router.route(RESIDENCE),
                                    ResidenceRegistrationRequest(pinfl=AZIZ.pinfl),
                                    client="portal", purpose="child-benefit", user="officer-17")
    envelope = node.seal.sign(envelope.model_copy(update={
        "issued_at": now - dt.timedelta(seconds=20), "expires_at": now - dt.timedelta(seconds=10)}))
    node.transport.publish(service_queue(RESIDENCE), Message(
        body=envelope.to_json(), message_id=envelope.id, expires_at=time.time() + 10))
    for _ in range(200):
        if any(d.message.message_id == envelope.id for d in node.transport.dead_letters()):
            return
        time.sleep(0.05)
    raise AssertionError("the expired request was not dead-lettered")


def _audit_export(stack: DemoStack) -> str:
    result = CliRunner().invoke(cli, ["audit", "export", "--since", "2000-01-01T00:00:00",
                                      "--config", str(stack.config_path)])
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") > len(PINFLS)  # the battery was audited
    return result.output


@pytest.mark.slow
def test_no_demo_pinfl_in_logs_metrics_problems_dead_letters_or_the_audit(
    demo_stack: DemoStack, portal: httpx.Client
) -> None:
    logs = io.StringIO()
    configure_logging("DEBUG", stream=logs)
    answers = _battery(demo_stack, portal)
    _dead_letter_with_a_pinfl(demo_stack)

    statuses = {r.status_code for r in answers}
    assert {200, 202, 400, 401, 403, 404, 415, 422} <= statuses  # the battery hit every class
    refused = [r for r in answers if r.status_code >= 400]
    places = {
        "log": logs.getvalue(),
        "metrics": httpx.get(demo_stack.gateway.url + "/metrics", timeout=10).text,
        "problems": "\n".join(r.text for r in refused),
        "response headers": "\n".join(f"{k}: {v}" for r in answers for k, v in r.headers.items()),
        "dead letters": "\n".join(
            f"{d.reason} {orjson.dumps(dict(d.message.headers)).decode()} {d.queue}"
            for d in demo_stack.node.transport.dead_letters()),
        "audit export": _audit_export(demo_stack),
    }
    assert places["log"].count("\n") > len(answers)  # there were log lines to search
    assert AZIZ.pinfl in answers[0].text  # the honest answer carries its data, as it should
    Envelope.from_json(answers[0].content)
    found = {(where, pinfl) for where, text in places.items() for pinfl in PINFLS
             if pinfl in text}
    assert found == set(), found
    assert all(uuid.UUID(line["message_id"]) for line in
               map(orjson.loads, places["audit export"].splitlines()))
