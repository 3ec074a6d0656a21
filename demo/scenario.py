"""``run_bus.py demo``: stand-in agencies, one node on the embedded transport, real exchanges.

What it does, in order: makes member keys and a portal API token in a state folder; seeds and
starts the residence registry (a REST/JSON agency with its own SQLite database) on a loopback
port; creates the cadastre's database; writes the node's configuration (``config/bus.yaml`` with
this run's ports, paths and token) and validates it like ``serve`` would; starts the node's HTTP
gateway; then asks services exactly as the portal would, verifies every answer's signature with
the provider's public key alone, and prints a table. Exit status 0 when every exchange ended
as expected.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.table import Table

from bus.cli import DEMO_MEMBERS, new_token
from bus.config import load_settings
from bus.gateway_http import create_app as create_gateway
from bus.logs import configure_logging
from bus.node import Node
from demo import cadastre, residence_registry
from demo.data import PEOPLE, UNKNOWN_PINFL
from demo.servers import RunningServer, serve_in_thread
from schemas import mask_identifier
from signing import JwsVerifier, SigningError, StaticTrustStore, generate_member_key

__all__ = ["DemoStack", "run_demo", "start_stack"]

CONFIG_TEMPLATE = Path(__file__).resolve().parent.parent / "config" / "bus.yaml"
RESIDENCE = "residence-registry/residence-registration/v1"
PROPERTY = "cadastre/property-ownership/v1"


@dataclass
class DemoStack:
    """Everything the demo started; ``stop`` stops it in reverse order."""

    state: Path
    config_path: Path
    token: str
    residence: RunningServer
    gateway: RunningServer
    node: Node
    owns_state: bool

    def stop(self) -> None:
        self.gateway.stop()
        self.residence.stop()
        if self.owns_state:
            shutil.rmtree(self.state, ignore_errors=True)


def write_config(
    state: Path,
    *,
    residence_url: str,
    cadastre_db: Path,
    token_sha256: str,
    listen: str = "127.0.0.1:0",
) -> Path:
    """This run's configuration: the example config with the demo's ports, paths and token."""
    config: dict[str, Any] = yaml.safe_load(CONFIG_TEMPLATE.read_text())
    config["node"].update(keys_dir=str(state / "keys"), listen=listen)
    config["transport"] = {"url": f"embedded://{state / 'queues.db'}"}
    for code, member in config["members"].items():
        member["public_key"] = str(state / "keys" / f"{code}.pub")
    config["members"]["portal"]["api_token_sha256"] = token_sha256
    config["services"][RESIDENCE]["adapter"]["base_url"] = residence_url
    config["services"][PROPERTY]["adapter"]["url"] = f"sqlite:///{cadastre_db}"
    path = state / "bus.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def start_stack(state_dir: Path | None = None, *, port: int = 0) -> DemoStack:
    """Start the demo agencies and a node; its gateway listens on 127.0.0.1:``port`` (0: any)."""
    owns = state_dir is None
    state = state_dir or Path(tempfile.mkdtemp(prefix="bus-demo-"))
    state.mkdir(parents=True, exist_ok=True)
    for member in DEMO_MEMBERS:
        if not (state / "keys" / f"{member}.key").exists():
            generate_member_key(state / "keys", member)
    token, digest = new_token()
    residence_db = state / "residence.db"
    residence_registry.seed(residence_db)
    residence = serve_in_thread(residence_registry.create_app(residence_db))
    cadastre_db = state / "cadastre.db"
    if not cadastre_db.exists():
        cadastre.create_database(cadastre_db)
    config_path = write_config(
        state,
        residence_url=residence.url,
        cadastre_db=cadastre_db,
        token_sha256=digest,
        listen=f"127.0.0.1:{port}",
    )
    node = Node(load_settings(config_path))
    try:
        gateway = serve_in_thread(create_gateway(node), port=port)
    except BaseException:
        residence.stop()
        raise
    return DemoStack(state, config_path, token, residence, gateway, node, owns)


@dataclass(frozen=True)
class Ask:
    service: str
    pinfl: str
    purpose: str
    expect: int
    note: str


def _scenario() -> list[Ask]:
    with_property = [p for p in PEOPLE if p.properties]
    without_property = [p for p in PEOPLE if not p.properties]
    asks = [Ask(RESIDENCE, p.pinfl, "child-benefit", 200, "residence record") for p in PEOPLE[:2]]
    asks += [
        Ask(PROPERTY, p.pinfl, "housing-subsidy", 200, "owns property") for p in with_property[:2]
    ]
    asks += [
        Ask(PROPERTY, p.pinfl, "housing-subsidy", 200, "owns nothing") for p in without_property[:1]
    ]
    asks.append(Ask(RESIDENCE, UNKNOWN_PINFL, "child-benefit", 404, "unknown to the registry"))
    asks.append(Ask(PROPERTY, PEOPLE[0].pinfl, "marketing", 403, "purpose not allowed"))
    return asks


def verify_answer(answer: dict[str, Any], provider_public_key: Path, provider: str) -> bool:
    """Verify a signed answer as the portal would: the provider's public key and nothing else."""
    trust = StaticTrustStore.from_files({provider: provider_public_key})
    unsigned = {k: v for k, v in answer.items() if k != "signature"}
    try:
        signer = JwsVerifier(trust).verify_json(unsigned, str(answer.get("signature", "")))
    except SigningError:
        return False
    return signer.member == provider


def exchange_all(stack: DemoStack) -> tuple[Table, bool]:
    table = Table(title="Exchanges through the bus (as the portal)", title_justify="left")
    for column in ("#", "service", "subject", "purpose", "outcome", "latency", "signature"):
        table.add_column(
            column,
            justify="right" if column in ("#", "latency") else "left",
            no_wrap=column != "outcome",
        )
    all_as_expected = True
    headers = {"Authorization": f"Bearer {stack.token}", "X-Bus-User": "demo-officer-1"}
    with httpx.Client(base_url=stack.gateway.url, headers=headers, timeout=15) as client:
        for i, ask in enumerate(_scenario(), 1):
            started = time.perf_counter()
            r = client.post(
                f"/v1/services/{ask.service}",
                json={"pinfl": ask.pinfl},
                headers={"X-Bus-Purpose": ask.purpose},
            )
            latency_ms = (time.perf_counter() - started) * 1000
            body = r.json()
            if r.status_code == 200:
                provider = ask.service.split("/")[0]
                ok = verify_answer(body, stack.state / "keys" / f"{provider}.pub", provider)
                outcome = f"200 {_summary(ask.service, body['payload'])}"
                signature = "[green]verified[/green]" if ok else "[red]INVALID[/red]"
            else:
                ok = True
                outcome = f"{r.status_code} {body.get('code')}"
                signature = "-"
            as_expected = ok and r.status_code == ask.expect
            all_as_expected &= as_expected
            style = "" if as_expected else "red"
            table.add_row(
                str(i),
                ask.service,
                mask_identifier(ask.pinfl),
                ask.purpose,
                outcome,
                f"{latency_ms:.1f} ms",
                signature,
                style=style,
            )
    return table, all_as_expected


def _summary(service: str, payload: dict[str, Any]) -> str:
    if service == PROPERTY:
        count = len(payload.get("properties", []))
        return f"{count} propert{'y' if count == 1 else 'ies'}"
    address = payload.get("address", {})
    return f"{payload.get('kind', '?')}, {address.get('region', '?')}"


def run_demo(
    console: Console, *, keep: bool = False, state_dir: Path | None = None, port: int = 0
) -> int:
    with console.status("starting demo agencies and a bus node…"):
        stack = start_stack(state_dir, port=port)
    configure_logging(stack.node.settings.log_level, path=stack.state / "node.log")
    try:
        console.print(f"residence registry (REST/JSON agency) at {stack.residence.url}")
        console.print(f"cadastre database at {stack.state / 'cadastre.db'} (read-only SQL adapter)")
        console.print(f"bus node {stack.node.name} at {stack.gateway.url}, embedded transport")
        console.print(f"config {stack.config_path}, JSON log {stack.state / 'node.log'}")
        table, ok = exchange_all(stack)
        console.print(table)
        console.print(
            "[green]every exchange ended as expected[/green]"
            if ok
            else "[red]some exchanges did not end as expected[/red]"
        )
        if keep:
            _print_try_it(console, stack)
            _wait_for_interrupt()
        return 0 if ok else 1
    finally:
        stack.stop()


def _print_try_it(console: Console, stack: DemoStack) -> None:
    pinfl = PEOPLE[0].pinfl
    console.print(
        f"\nOpenAPI: {stack.gateway.url}/docs    residence registry: {stack.residence.url}/docs"
    )
    console.print(
        f"Metrics: {stack.gateway.url}/metrics    readiness: {stack.gateway.url}/health/ready"
        f"    live view: python run_bus.py status --url {stack.gateway.url}"
    )
    console.print("Try (the token is this run's portal token):")
    console.print(
        f"curl -s {stack.gateway.url}/v1/services/{PROPERTY} "
        f"-H 'Authorization: Bearer {stack.token}' -H 'X-Bus-Purpose: housing-subsidy' "
        f"-H 'X-Bus-User: officer-17' -H 'Content-Type: application/json' "
        f'-d \'{{"pinfl": "{pinfl}"}}\'',
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print("Ctrl-C stops everything.")


def _wait_for_interrupt() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
