"""Deadlines: a slow agency and a provider nobody serves both end in a 504 problem, in time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from starlette.types import Receive, Scope, Send

from bus.cli.app import DEMO_MEMBERS, new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app
from bus.node.wiring import Node
from demo import cadastre, residence_registry
from demo.data import AZIZ
from demo.scenario import PROPERTY, RESIDENCE, write_config
from demo.servers import serve_in_thread
from signing import generate_member_key


class SlowAgency:
    """The residence registry, answering after ``delay_s``."""

    def __init__(self, db: Path, delay_s: float) -> None:
        self.app = residence_registry.create_app(db)
        self.delay_s = delay_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            await asyncio.sleep(self.delay_s)
        await self.app(scope, receive, send)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A node whose residence service has 1 s to answer, and whose cadastre nobody serves."""
    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    token, digest = new_token()
    with serve_in_thread(SlowAgency(tmp_path / "r.db", 5), timeout_graceful_shutdown=1) as agency:
        path = write_config(
            tmp_path,
            residence_url=agency.url,
            cadastre_db=cadastre.create_database(tmp_path / "c.db"),
            token_sha256=digest,
        )
        config = yaml.safe_load(path.read_text())
        config["services"][RESIDENCE]["timeout_s"] = 1
        config["services"][PROPERTY]["timeout_s"] = 1
        config["node"]["hosts"] = ["portal", "residence-registry"]  # no cadastre worker anywhere
        path.write_text(yaml.safe_dump(config))
        with serve_in_thread(create_app(Node(load_settings(path)))) as node:
            yield (
                node.url,
                {
                    "Authorization": f"Bearer {token}",
                    "X-Bus-User": "officer-17",
                },
            )


def _ask(
    url: str, headers: dict[str, str], service: str, purpose: str
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    r = httpx.post(
        f"{url}/v1/services/{service}",
        json={"pinfl": AZIZ.pinfl},
        headers={**headers, "X-Bus-Purpose": purpose},
        timeout=10,
    )
    return r, time.monotonic() - started


def test_slow_agency_is_a_provider_timeout_within_the_deadline(
    gateway: tuple[str, dict[str, str]],
) -> None:
    r, took = _ask(*gateway, RESIDENCE, "child-benefit")
    assert r.status_code == 504, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "provider-timeout"
    assert took < 2.0  # the 1 s budget, not the agency's 5 s


def test_provider_nobody_serves_is_deadline_exceeded(gateway: tuple[str, dict[str, str]]) -> None:
    r, took = _ask(*gateway, PROPERTY, "housing-subsidy")
    assert r.status_code == 504, r.text
    assert r.json()["code"] == "deadline-exceeded"
    assert r.json()["message_id"] == r.headers["X-Bus-Message-Id"]
    assert took < 2.5
