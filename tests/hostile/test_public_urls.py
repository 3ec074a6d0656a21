"""URLs an attacker would like the bus to use: a document's verify link and QR code come from
``documents.public_url`` only, never from a forged Host header; callbacks to loopback or private
addresses are refused by the example's and the demo's configuration, and nothing is queued."""

from __future__ import annotations

import base64
import ipaddress
import re
from pathlib import Path

import httpx
import pytest
import yaml

from bus.config.loader import ConfigError, load_settings
from bus.gateway.documents import qr_png
from bus.transport import service_queue
from demo.data import PEOPLE
from demo.node_config import CONFIG_TEMPLATE, write_config
from demo.scenario import PROPERTY, RESIDENCE, DemoStack

PERSON = PEOPLE[0]
FORGED_HOSTS = ["evil.example.org", "127.0.0.1:1", "bus.example.gov@evil.example.org",
                "[::1]", "evil.example.org:443"]


@pytest.fixture(scope="module")
def number(demo_stack: DemoStack) -> str:
    """A document the portal was issued on the demo stack."""
    r = httpx.post(
        f"{demo_stack.gateway.url}/v1/services/{PROPERTY}", json={"pinfl": PERSON.pinfl},
        headers={"Authorization": f"Bearer {demo_stack.token}", "X-Bus-User": "officer-17",
                 "X-Bus-Purpose": "housing-subsidy"}, timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.headers["X-Bus-Request-Number"]


def _qr(page: str) -> bytes:
    match = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert match is not None
    return base64.b64decode(match.group(1))


@pytest.mark.parametrize("host", FORGED_HOSTS)
def test_a_forged_host_header_does_not_move_the_verify_link_or_the_qr_code(
    demo_stack: DemoStack, number: str, host: str
) -> None:
    public = demo_stack.node.settings.documents.public_url
    assert public == demo_stack.gateway.url  # the demo's config names the node's own URL
    expected = f"{public}/verify/{number}"
    r = httpx.get(
        f"{demo_stack.gateway.url}/v1/documents/{number}",
        headers={"Authorization": f"Bearer {demo_stack.token}", "Host": host,
                 "X-Forwarded-Host": host, "X-Forwarded-Proto": "https", "Forwarded":
                 f"host={host};proto=https"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert f"<code>{expected}</code>" in r.text and f'alt="QR code: {expected}"' in r.text
    assert "evil" not in r.text and host not in r.text.replace(public, "")
    assert _qr(r.text) == qr_png(expected)  # the code itself encodes the configured URL


def test_the_verify_page_is_the_same_whatever_the_host(demo_stack: DemoStack, number: str
                                                       ) -> None:
    url = f"{demo_stack.gateway.url}/verify/{number}"
    plain = httpx.get(url, headers={"Accept": "application/json"}, timeout=10)
    forged = httpx.get(url, headers={"Accept": "application/json", "Host": "evil.example.org"},
                       timeout=10)
    assert plain.status_code == forged.status_code == 200
    assert plain.json() == forged.json()


def _gateway_config(tmp_path: Path, **documents: object) -> Path:
    config = {
        "members": {"portal": {"public_key": "portal.pub", "api_token_sha256": "a" * 64}},
        "documents": documents,
    }
    path = tmp_path / "bus.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_gateway_without_public_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_gateway_config(tmp_path), check_references=True)
    problems = [p for p in caught.value.problems if p.path == "documents.public_url"]
    assert len(problems) == 1
    assert "required" in problems[0].message and "Host" in problems[0].message
    assert "portal" in problems[0].message


def test_a_node_that_answers_no_client_needs_no_public_url(tmp_path: Path) -> None:
    path = tmp_path / "bus.yaml"
    path.write_text("node: {name: provider-1}\n")
    assert load_settings(path).documents.public_url is None


@pytest.mark.parametrize(
    "url",
    ["ftp://bus.example.gov", "http://", "https://bus.example.gov/?next=evil",
     "https://bus.example.gov/#frag", "https://bus.example.gov:99999", "bus.example.gov",
     "https://user@bus.example.gov", "javascript:alert(1)", "https://bus.example.gov/ x"],
)
def test_a_public_url_that_is_not_a_plain_base_url_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_gateway_config(tmp_path, public_url=url), check_references=False)
    assert [p.path for p in caught.value.problems] == ["documents.public_url"]


def test_a_public_url_loses_its_trailing_slash(tmp_path: Path) -> None:
    path = _gateway_config(tmp_path, public_url="https://bus.example.gov/docs/")
    settings = load_settings(path, check_references=False)
    assert settings.documents.public_url == "https://bus.example.gov/docs"


def _never_private(callbacks: dict[str, object]) -> None:
    for host in callbacks.get("allowed_hosts", []) or []:
        assert host not in ("localhost",) and not host.endswith(".localhost")
        try:
            address = ipaddress.ip_address(str(host))
        except ValueError:
            continue
        assert address.is_global, host
    for network in callbacks.get("allowed_networks", []) or []:
        assert ipaddress.ip_network(str(network)).is_global, network
    assert callbacks.get("allow_private", False) is False
    assert callbacks.get("require_https", True) is True


def test_the_example_config_allows_no_private_callbacks() -> None:
    raw = yaml.safe_load(CONFIG_TEMPLATE.read_text())
    _never_private(raw.get("callbacks") or {})
    for member in raw["members"].values():
        _never_private({"allowed_hosts": member.get("callback_hosts") or []})
    settings = load_settings(CONFIG_TEMPLATE, check_references=False)
    assert settings.callbacks.allowed_networks == [] and settings.callbacks.require_https


def test_the_demo_config_allows_no_private_callbacks(tmp_path: Path) -> None:
    path = write_config(tmp_path, residence_url="http://127.0.0.1:9",
                        cadastre_db=tmp_path / "c.db", token_sha256="c" * 64)
    _never_private(yaml.safe_load(path.read_text()).get("callbacks") or {})


@pytest.mark.parametrize(
    "callback",
    ["http://127.0.0.1:9/hook", "https://127.0.0.1/hook", "https://localhost/hook",
     "https://[::1]/hook", "https://10.0.0.1/hook", "https://192.168.1.1/hook",
     "https://169.254.169.254/latest/meta-data", "https://0.0.0.0/hook",
     "https://2130706433/hook", "https://hooks.portal.example.gov/hook"],
)
def test_the_demo_refuses_every_callback_and_queues_nothing(
    demo_stack: DemoStack, callback: str
) -> None:
    agency = demo_stack.residence.server.config.app
    before = agency.state.lookups
    transport = demo_stack.node.transport
    r = httpx.post(
        f"{demo_stack.gateway.url}/v1/services/{RESIDENCE}?mode=async",
        json={"pinfl": PERSON.pinfl},
        headers={"Authorization": f"Bearer {demo_stack.token}", "X-Bus-User": "officer-17",
                 "X-Bus-Purpose": "child-benefit", "X-Bus-Callback": callback},
        timeout=10,
    )
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] in ("callback-refused", "malformed-request")
    assert "X-Bus-Callback" in r.json()["detail"]
    assert "Location" not in r.headers
    assert transport.queue_depth(service_queue(RESIDENCE)) == 0
    assert agency.state.lookups == before
