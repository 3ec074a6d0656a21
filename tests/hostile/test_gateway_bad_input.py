"""Bad input at the HTTP gateway: each gets its own clear problem+json and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bus.transport import service_queue
from demo.data import AZIZ
from demo.scenario import PROPERTY, RESIDENCE, DemoStack


@pytest.fixture
def unchanged(demo_stack: DemoStack) -> Iterator[None]:
    """Assert that the test caused no agency lookup, no queued message and no dead letter."""
    app = demo_stack.residence.server.config.app
    before = app.state.lookups
    transport = demo_stack.node.transport
    yield
    assert app.state.lookups == before, "the agency was called"
    for service in (RESIDENCE, PROPERTY):
        assert transport.queue_depth(service_queue(service)) == 0
    assert transport.dead_letters() == []


def _problem(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == f"https://bus.example.gov/problems/{code}"
    assert body["status"] == status and body["code"] == code
    assert body["title"] and body["detail"]
    assert "Traceback" not in r.text and 'File "' not in r.text
    return body


URL = f"/v1/services/{RESIDENCE}"
PURPOSE = {"X-Bus-Purpose": "child-benefit"}


@pytest.mark.usefixtures("unchanged")
class TestRefusedAtTheGateway:
    def test_malformed_json(self, portal: httpx.Client) -> None:
        r = portal.post(
            URL,
            content=b'{"pinfl": "3150586',
            headers={**PURPOSE, "Content-Type": "application/json"},
        )
        _problem(r, 400, "malformed-request")

    @pytest.mark.parametrize(
        "pinfl",
        [
            "3150586274001",
            "315058627400134",
            "3150586274001x",
            "71505862740013",
            "33213862740013",
            "٣١٥٠٥٨٦٢٧٤٠٠١٣",
        ],
    )
    def test_wrong_pinfl(self, portal: httpx.Client, pinfl: str) -> None:
        body = _problem(
            portal.post(URL, json={"pinfl": pinfl}, headers=PURPOSE), 422, "schema-invalid"
        )
        assert body["errors"][0]["loc"] == ["body", "pinfl"]  # type: ignore[index]

    def test_problem_does_not_echo_the_pinfl(self, portal: httpx.Client) -> None:
        r = portal.post(URL, json={"pinfl": "33213862740013"}, headers=PURPOSE)
        _problem(r, 422, "schema-invalid")
        assert "33213862740013" not in r.text

    def test_extra_field(self, portal: httpx.Client) -> None:
        r = portal.post(URL, json={"pinfl": AZIZ.pinfl, "income": 1}, headers=PURPOSE)
        _problem(r, 422, "schema-invalid")

    def test_body_not_an_object(self, portal: httpx.Client) -> None:
        _problem(portal.post(URL, json=[AZIZ.pinfl], headers=PURPOSE), 422, "schema-invalid")

    @pytest.mark.parametrize(
        "path",
        [
            "/v1/services/tax/income/v1",
            "/v1/services/residence-registry/residence-registration/v2",
            "/v1/services/../../etc/passwd",
        ],
    )
    def test_unknown_service(self, portal: httpx.Client, path: str) -> None:
        _problem(
            portal.post(path, json={"pinfl": AZIZ.pinfl}, headers=PURPOSE), 404, "unknown-service"
        )

    def test_missing_token(self, demo_stack: DemoStack) -> None:
        r = httpx.post(
            demo_stack.gateway.url + URL,
            json={"pinfl": AZIZ.pinfl},
            headers={**PURPOSE, "X-Bus-User": "u"},
        )
        _problem(r, 401, "unauthenticated")

    @pytest.mark.parametrize(
        "auth", ["Bearer wrong-token", "Basic cG9ydGFsOnB3", "Bearer  x", "bearer"]
    )
    def test_wrong_token(self, demo_stack: DemoStack, auth: str) -> None:
        r = httpx.post(
            demo_stack.gateway.url + URL,
            json={"pinfl": AZIZ.pinfl},
            headers={**PURPOSE, "X-Bus-User": "u", "Authorization": auth},
        )
        _problem(r, 401, "unauthenticated")

    def test_unknown_service_needs_a_token_first(self, demo_stack: DemoStack) -> None:
        r = httpx.post(demo_stack.gateway.url + "/v1/services/tax/income/v1", json={})
        _problem(r, 401, "unauthenticated")

    def test_purpose_not_in_the_right(self, portal: httpx.Client) -> None:
        body = _problem(
            portal.post(URL, json={"pinfl": AZIZ.pinfl}, headers={"X-Bus-Purpose": "marketing"}),
            403,
            "access-denied",
        )
        assert "child-benefit" in str(body["detail"])

    def test_missing_purpose(self, portal: httpx.Client) -> None:
        _problem(portal.post(URL, json={"pinfl": AZIZ.pinfl}), 400, "malformed-request")

    def test_oversized_body(self, portal: httpx.Client) -> None:
        big = b'{"pinfl": "' + b"1" * 300_000 + b'"}'
        r = portal.post(URL, content=big, headers={**PURPOSE, "Content-Type": "application/json"})
        _problem(r, 413, "payload-too-large")

    def test_oversized_chunked_body(self, portal: httpx.Client) -> None:
        def chunks() -> Iterator[bytes]:
            yield b'{"pinfl": "'
            for _ in range(40):
                yield b"1" * 10_000
            yield b'"}'

        r = portal.post(
            URL, content=chunks(), headers={**PURPOSE, "Content-Type": "application/json"}
        )
        _problem(r, 413, "payload-too-large")
