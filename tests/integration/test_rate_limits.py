"""Rate limits at the gateway: over its limit a member gets 429 with Retry-After, audited."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from bus.cli.app import DEMO_MEMBERS, new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.node.wiring import Node
from demo import cadastre
from demo.data import AZIZ
from demo.scenario import PROPERTY, write_config
from demo.servers import serve_in_thread
from signing import generate_member_key


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Node]]:
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    path = write_config(
        tmp_path,
        residence_url="http://127.0.0.1:9",
        cadastre_db=cadastre.create_database(tmp_path / "c.db"),
        token_sha256=digest,
    )
    config = yaml.safe_load(path.read_text())
    config["members"]["portal"]["rate_limit"] = {"per_second": 0.2, "burst": 2}
    path.write_text(yaml.safe_dump(config))
    node = Node(load_settings(path))
    with serve_in_thread(create_app(node)) as server:
        headers = {"Authorization": f"Bearer {token}", "X-Bus-User": "officer-17",
                   "X-Bus-Purpose": "housing-subsidy"}
        yield server.url, headers, node


def test_over_the_limit_is_429_with_retry_after(
    gateway: tuple[str, dict[str, str], Node],
) -> None:
    url, headers, node = gateway

    def ask(correlation: str | None = None) -> httpx.Response:
        extra = {"X-Bus-Correlation": correlation} if correlation else {}
        return httpx.post(f"{url}/v1/services/{PROPERTY}", json={"pinfl": AZIZ.pinfl},
                          headers={**headers, **extra}, timeout=10)

    assert [ask().status_code for _ in range(2)] == [200, 200]  # the burst
    correlation = str(uuid.uuid4())
    r = ask(correlation)
    assert r.status_code == 429, r.text
    assert r.headers["Retry-After"] == "5"  # 1 token at 0.2/s
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "rate-limited"
    (entry,) = [e for e in node.audit.store.entries() if e.correlation == correlation]
    assert (entry.outcome, entry.side, entry.client) == ("rate-limited", "gateway", "portal")
    metrics = httpx.get(f"{url}/metrics", timeout=5).text
    assert (
        f'bus_exchanges_total{{client="portal",outcome="rate-limited",service="{PROPERTY}"}} 1.0'
        in metrics
    )
