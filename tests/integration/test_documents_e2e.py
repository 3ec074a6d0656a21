"""Documents end to end, on the demo with a CA and certificates: request numbers on answers,
the public /verify page (no personal data), the client's document with a QR code, unknown and
mistyped numbers, revocation seen at once, the portal's revoked certificate refused by the
provider, and ``run_bus.py verify FILE`` offline."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from bus.cli.app import app
from bus.core.envelope import Envelope, new_id, utcnow
from bus.records.documents import format_number
from demo.data import PEOPLE
from demo.scenario import DEMO_CA_PASSPHRASE, PROPERTY, RESIDENCE, DemoStack, start_stack
from signing import CertificateAuthority

PERSON = PEOPLE[0]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    stack = start_stack(tmp_path_factory.mktemp("pki-demo"), pki=True)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def portal(stack: DemoStack) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {stack.token}", "X-Bus-User": "officer-17"}
    with httpx.Client(base_url=stack.gateway.url, headers=headers, timeout=10) as client:
        yield client


def ask(
    portal: httpx.Client, service: str = RESIDENCE, purpose: str = "child-benefit"
) -> httpx.Response:
    return portal.post(
        f"/v1/services/{service}", json={"pinfl": PERSON.pinfl}, headers={"X-Bus-Purpose": purpose}
    )


def personal(text: str) -> list[str]:
    """Personal data of the person asked about that appear in ``text``."""
    words = [PERSON.pinfl, "officer-17", PERSON.surname, PERSON.given_name, PERSON.patronymic]
    return [w for w in words if w and w in text]


def test_every_answer_carries_a_new_request_number(portal: httpx.Client) -> None:
    numbers = []
    for service, purpose in ((RESIDENCE, "child-benefit"), (PROPERTY, "housing-subsidy")) * 2:
        r = ask(portal, service, purpose)
        assert r.status_code == 200, r.text
        number = r.headers["X-Bus-Request-Number"]
        assert re.fullmatch(r"BUS-20\d\d-\d{6}-\d", number)
        numbers.append(number)
        assert "number" not in r.json()  # not inside the provider-signed envelope
    assert len(set(numbers)) == 4


def test_refusals_carry_no_number(portal: httpx.Client) -> None:
    r = ask(portal, PROPERTY, "marketing")
    assert r.status_code == 403 and "X-Bus-Request-Number" not in r.headers


def test_public_verify_page_shows_who_and_when_but_no_personal_data(
    stack: DemoStack, portal: httpx.Client
) -> None:
    r = ask(portal)
    number = r.headers["X-Bus-Request-Number"]
    with httpx.Client(base_url=stack.gateway.url, timeout=10) as anonymous:
        as_json = anonymous.get(f"/verify/{number}", headers={"Accept": "application/json"})
        page = anonymous.get(f"/verify/{number}", headers={"Accept": "text/html"})
    assert as_json.status_code == 200
    view = as_json.json()
    assert view["number"] == number and view["service"] == RESIDENCE
    assert view["provider"] == "residence-registry" and view["client"] == "portal"
    assert view["issued_at"] == r.json()["issued_at"]
    assert (
        view["signature"]["valid"] is True and view["signature"]["signer"] == "residence-registry"
    )
    assert view["signature"]["certificate_serial"]
    assert view["fingerprint"] == hashlib.sha256(r.content).hexdigest()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert number in page.text and "valid" in page.text and "Residence registry" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for text in (as_json.text, page.text):
        assert personal(text) == []
        assert PERSON.pinfl[:6] not in text


def test_a_qr_pointing_at_an_unknown_number(stack: DemoStack) -> None:
    unknown = format_number("BUS", 2031, 999_999)
    mistyped = unknown[:-1] + str((int(unknown[-1]) + 1) % 10)
    with httpx.Client(base_url=stack.gateway.url, timeout=10) as anonymous:
        r = anonymous.get(f"/verify/{unknown}")
        html = anonymous.get(f"/verify/{unknown}", headers={"Accept": "text/html"})
        typo = anonymous.get(f"/verify/{mistyped}")
        hostile = anonymous.get(
            "/verify/<img src=x onerror=alert(1)>", headers={"Accept": "text/html"}
        )
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/unknown-document") and r.json()["code"] == "unknown-document"
    assert html.status_code == 404 and "No such document" in html.text
    assert typo.status_code == 404 and "check digit" in typo.json()["detail"]
    assert hostile.status_code == 404 and "<img" not in hostile.text


def test_the_client_gets_its_document_with_a_qr_code(
    stack: DemoStack, portal: httpx.Client
) -> None:
    r = ask(portal, PROPERTY, "housing-subsidy")
    number = r.headers["X-Bus-Request-Number"]
    doc = portal.get(f"/v1/documents/{number}")
    assert doc.status_code == 200 and doc.headers["cache-control"] == "no-store"
    assert number in doc.text and PERSON.pinfl in doc.text  # the document itself shows the data
    assert f"{stack.gateway.url}/verify/{number}" in doc.text
    match = re.search(r'src="data:image/png;base64,([^"]+)"', doc.text)
    assert match is not None
    assert base64.b64decode(match.group(1)).startswith(b"\x89PNG\r\n\x1a\n")
    signed = portal.get(f"/v1/documents/{number}", headers={"Accept": "application/json"})
    assert signed.content == r.content  # the signed answer, byte for byte
    anonymous = httpx.get(f"{stack.gateway.url}/v1/documents/{number}", timeout=10)
    assert anonymous.status_code == 401


def test_another_clients_document_is_not_found(stack: DemoStack, portal: httpx.Client) -> None:
    record = stack.node.documents.issue(
        Envelope.from_json(ask(portal).content).model_copy(update={"client": "cadastre"}),
        message_id=new_id(),
    )
    r = portal.get(f"/v1/documents/{record.number}")
    assert r.status_code == 404 and r.json()["code"] == "unknown-document"


def test_verify_file_offline(stack: DemoStack, portal: httpx.Client, tmp_path: Path) -> None:
    r = ask(portal)
    saved = tmp_path / "answer.json"
    saved.write_bytes(r.content)
    runner = CliRunner()
    result = runner.invoke(app, ["verify", str(saved), "--config", str(stack.config_path)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "residence-registry" in result.output
    assert PERSON.pinfl not in result.output  # never the payload
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(r.content.replace(PERSON.pinfl.encode(), b"42203902740025"))
    result = runner.invoke(app, ["verify", str(tampered), "--config", str(stack.config_path)])
    assert result.exit_code == 1 and "INVALID" in result.output
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"{}")
    assert runner.invoke(app, ["verify", str(garbage), "-c", str(stack.config_path)]).exit_code == 1


def test_revocations_show_at_once(tmp_path: Path) -> None:
    """A separate stack: the provider's certificate revoked (its documents no longer stand) and
    the portal's (its requests are refused by the provider: 403 certificate-revoked)."""
    stack = start_stack(tmp_path, pki=True)
    try:
        headers = {"Authorization": f"Bearer {stack.token}", "X-Bus-User": "officer-17"}
        with httpx.Client(base_url=stack.gateway.url, headers=headers, timeout=10) as portal:
            number = ask(portal, PROPERTY, "housing-subsidy").headers["X-Bus-Request-Number"]
            ca = CertificateAuthority.open(tmp_path / "ca", DEMO_CA_PASSPHRASE.encode())
            ca.revoke(ca.find("cadastre")[0].serial_number, "key_compromise")
            stack.node.trust.reload()  # (or wait trust.reload_s)
            view = portal.get(f"/verify/{number}", headers={"Accept": "application/json"}).json()
            assert view["signature"]["state"] == "revoked" and not view["signature"]["valid"]
            refused = ask(portal, PROPERTY, "housing-subsidy")  # the cadastre's answers now
            assert refused.status_code == 502
            assert "revoked" in refused.json()["detail"]
            ca.revoke(ca.find("portal")[0].serial_number)
            stack.node.trust.reload()
            r = ask(portal)
            assert r.status_code == 403, r.text
            problem = r.json()
            assert problem["code"] == "certificate-revoked"
            assert problem["type"].endswith("/certificate-revoked")
    finally:
        stack.stop()


def test_a_purged_document_stays_verifiable_by_its_number(
    stack: DemoStack, portal: httpx.Client
) -> None:
    """Retention: the signed answer goes (410 for its client), /verify still says what was
    issued, with the fingerprint printed on the paper. Last: it purges the shared stack."""
    r = ask(portal)
    number = r.headers["X-Bus-Request-Number"]
    assert stack.node.documents.purge(utcnow() + dt.timedelta(seconds=1)) >= 1
    with httpx.Client(base_url=stack.gateway.url, timeout=10) as anonymous:
        view = anonymous.get(f"/verify/{number}", headers={"Accept": "application/json"}).json()
        page = anonymous.get(f"/verify/{number}", headers={"Accept": "text/html"})
    assert view["number"] == number and view["provider"] == "residence-registry"
    assert view["fingerprint"] == hashlib.sha256(r.content).hexdigest() and view["purged_at"]
    assert view["signature"]["state"] == "purged" and view["signature"]["valid"] is False
    assert page.status_code == 200 and "no longer kept" in page.text
    for accept in ("text/html", "application/json"):
        gone = portal.get(f"/v1/documents/{number}", headers={"Accept": accept})
        assert gone.status_code == 410 and gone.json()["code"] == "document-purged"
        assert personal(gone.text) == []
