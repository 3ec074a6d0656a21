"""A transactional service retried by the bus is executed once: the social-protection agency
records the child-birth benefit application, its answer is lost (a 503 on the way back), the
bus retries under its retry policy, and the agency answers the same receipt from the one record
it keeps under the application id."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from bus.cli.app import DEMO_MEMBERS, new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.node.wiring import Node
from demo import cadastre, social_protection
from demo.child_benefit import BANK_ACCOUNT
from demo.data import DILNOZA
from demo.node_config import CHILD_BENEFIT, AgencyUrls, write_config
from demo.records import BENEFIT_CHILD
from demo.servers import serve_in_thread
from signing import generate_member_key

pytestmark = pytest.mark.slow


class LosesFirstAnswer:
    """The agency behind a link that loses its first answer to an application: the agency did
    its work, the bus sees a 503."""

    def __init__(self, db: Path) -> None:
        self.app = social_protection.create_app(db)
        self.posts = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        self.posts += 1
        if self.posts > 1:
            return await self.app(scope, receive, send)

        async def lost(message: Message) -> None:  # the agency answers; nobody hears it
            return None

        await self.app(scope, receive, lost)
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b"answer lost"})
        return None


def test_a_retried_application_is_recorded_once(tmp_path: Path) -> None:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    agency = LosesFirstAnswer(tmp_path / "social.db")
    with serve_in_thread(agency) as social:
        config = write_config(
            tmp_path, residence_url="http://127.0.0.1:9", token_sha256=digest,
            cadastre_db=cadastre.create_database(tmp_path / "c.db"),
            agencies=AgencyUrls(pension_wsdl="http://127.0.0.1:9/ws?wsdl",
                                education_db=tmp_path / "education.db",
                                enforcement_url="http://127.0.0.1:9", social_url=social.url))
        with serve_in_thread(create_app(Node(load_settings(config)))) as node, \
                httpx.Client(base_url=node.url, timeout=30, headers={
                    "Authorization": f"Bearer {token}", "X-Bus-User": "officer-9",
                    "X-Bus-Purpose": "child-benefit"}) as portal:
            application_id = str(uuid.uuid4())
            r = portal.post(f"/v1/services/{CHILD_BENEFIT}", json={
                "application_id": application_id, "applicant_pinfl": DILNOZA.pinfl,
                "child_pinfl": BENEFIT_CHILD.pinfl, "birth_certificate": BENEFIT_CHILD.certificate,
                "bank_account": BANK_ACCOUNT, "evidence": ["BUS-2026-000001-1"]})
    assert r.status_code == 200, r.text
    assert agency.posts == 2  # the bus retried after the lost answer
    assert r.json()["payload"]["receipt_number"].endswith("-000001")
    assert social_protection.applications_recorded(tmp_path / "social.db", application_id) == 1
