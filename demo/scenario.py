"""``run_bus.py demo``: stand-in agencies, one node on the embedded transport, real exchanges.

What it does, in order: makes a bus CA, member keys with their certificates and a portal API
token in a state folder (``pki=False``: bare Ed25519 keys instead, what the tests' stack uses);
seeds and starts the residence registry (a REST/JSON agency with its own SQLite database) and
the civil registry (a SOAP agency with its own SQLite database) on loopback ports; creates the
cadastre's database; writes the node's configuration (``demo.node_config``: ``config/bus.yaml``
with this run's ports, paths and token) and validates it like ``serve`` would; starts the node's
HTTP gateway; then asks services exactly as the portal would, verifies every answer's signature
with the CA certificate, the CRL and the provider's certificate alone (or its public key), prints
a table with each answer's request number, and checks one number on the public ``/verify`` page;
then verifies the audit log's chain and shows the first person's "who read my data" report as
the citizen would fetch it, with an ID token of the demo identity provider (``demo.identity``,
started beside the agencies). Exit status 0 when every exchange ended as expected.

The demo's CA and key passphrases are fixed, demo-only values (``DEMO_CA_PASSPHRASE``,
``DEMO_KEY_PASSPHRASE``); the key passphrase is written into the demo's configuration, which
therefore says ``allow_plain_secrets: true`` (``check-config`` warns about it). A real
deployment sets ``BUS_CA_PASSPHRASE`` and ``BUS_NODE__KEY_PASSPHRASE`` from its secrets.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bus.cli.app import DEMO_MEMBERS, new_token
from bus.config.loader import load_settings
from bus.gateway.app import create_app as create_gateway
from bus.gateway.server import server_options
from bus.node.wiring import Node
from bus.ops.logs import configure_logging
from bus.records.audit import verify
from bus.transport import open_transport
from demo import cadastre, civil_registry, residence_registry
from demo.agencies import Agencies, start_agencies
from demo.archive import ARCHIVE, show_archive
from demo.asks import scenario_asks
from demo.bundle import show_bundle
from demo.child_benefit import show_child_benefit
from demo.citizen_document import show_citizen_document
from demo.data import PEOPLE
from demo.identity import AUDIENCE, DemoIdentityProvider
from demo.keep_running import print_try_it, print_waiting_task, wait_for_interrupt
from demo.node_config import CIVIL, CONFIG_TEMPLATE, PROPERTY, RESIDENCE, write_config
from demo.permanent_registration import show_permanent_registration
from demo.servers import (
    RunningServer,
    ServeProcess,
    listening_socket,
    serve_in_thread,
    serve_process,
)
from demo.social_protection import applications_recorded
from demo.summary import summary
from schemas import mask_identifier
from signing import (
    CertificateAuthority,
    CertificateTrustStore,
    JwsVerifier,
    SigningError,
    StaticTrustStore,
    TrustStore,
    generate_member_key,
    issue_member,
)
from signing.files import private_dir

# The services, CONFIG_TEMPLATE and write_config live in demo.node_config; they are
# re-exported here for the code that has always found them in the scenario.
__all__ = [
    "CIVIL",
    "CONFIG_TEMPLATE",
    "PROPERTY",
    "RESIDENCE",
    "DemoStack",
    "run_demo",
    "start_stack",
    "write_config",
]

DEMO_CA_PASSPHRASE = "demo-only-ca-passphrase"
DEMO_KEY_PASSPHRASE = "demo-only-key-passphrase"


@dataclass
class DemoStack:
    """Everything the demo started; ``stop`` stops it in reverse order."""

    state: Path
    config_path: Path
    token: str
    residence: RunningServer
    gateway: RunningServer | ServeProcess
    node: Node
    owns_state: bool
    pki: bool = False
    civil: RunningServer | None = None  # the SOAP civil registry
    archivist: str = ""  # the state archive's operator password for /inbox
    agencies: Agencies | None = None  # the pension fund, enforcement bureau, social protection…
    officer: str = ""  # the residence registry's passport officer's password for /inbox
    numbers: list[str] = field(default_factory=list)  # request numbers of the answers received
    identity: DemoIdentityProvider | None = None  # the national identity provider (OIDC)
    identity_server: RunningServer | None = None

    def trust_for(self, provider: str) -> TrustStore:
        """What the portal needs to verify ``provider``'s answers, and nothing else."""
        keys = self.state / "keys"
        if self.pki:
            return CertificateTrustStore.from_files(
                self.state / "ca" / "ca.crt",
                {provider: keys / f"{provider}.crt"},
                self.state / "ca" / "crl.pem",
            )
        return StaticTrustStore.from_files({provider: keys / f"{provider}.pub"})

    def stop(self) -> None:
        self.gateway.stop()
        if isinstance(self.gateway, ServeProcess):
            self.node.stop()  # the inbox desks, transport and audit log opened here
        self.residence.stop()
        if self.identity_server is not None:
            self.identity_server.stop()
        if self.civil is not None:
            self.civil.stop()
        if self.agencies is not None:
            self.agencies.stop()
        if self.owns_state:
            shutil.rmtree(self.state, ignore_errors=True)


def _make_pki(state: Path) -> None:
    """A demo CA in ``state/ca`` and a key and certificate per member (kept across runs)."""
    ca_dir, keys = state / "ca", state / "keys"
    passphrase = DEMO_CA_PASSPHRASE.encode()
    if (ca_dir / "ca.key").exists():
        ca = CertificateAuthority.open(ca_dir, passphrase)
    else:
        ca = CertificateAuthority.create(ca_dir, passphrase, name="Demo bus CA")
    for member in DEMO_MEMBERS:
        if not (keys / f"{member}.crt").exists():
            (keys / f"{member}.key").unlink(missing_ok=True)  # a bare key from a run without PKI
            issue_member(ca, keys, member, passphrase=DEMO_KEY_PASSPHRASE.encode())


def _make_keys(state: Path) -> None:
    for member in DEMO_MEMBERS:
        if not (state / "keys" / f"{member}.pub").exists():
            generate_member_key(state / "keys", member, overwrite=True)


def start_stack(
    state_dir: Path | None = None, *, port: int = 0, pki: bool = False, workers: int = 1
) -> DemoStack:
    """Start the demo agencies and a node; its gateway listens on 127.0.0.1:``port`` (0: any).

    ``pki``: trust through a demo CA and member certificates (``run_bus.py demo``); otherwise
    through bare Ed25519 keys (the tests' ``demo_stack``). ``workers`` > 1: the node runs as
    ``run_bus.py serve --workers N`` in a child process (its log in ``node.log``), and ``node``
    here opens the same files (audit log, documents, the inbox desks) without serving.
    """
    owns = state_dir is None
    state = state_dir or Path(tempfile.mkdtemp(prefix="bus-demo-"))
    private_dir(state)
    if pki:
        _make_pki(state)
    else:
        _make_keys(state)
    token, digest = new_token()
    archivist, archivist_digest = new_token()
    officer, officer_digest = new_token()
    residence_db = state / "residence.db"
    residence_registry.seed(residence_db)
    residence = serve_in_thread(residence_registry.create_app(residence_db))
    try:
        civil = serve_in_thread(civil_registry.create_app(state / "civil.db"))
    except BaseException:
        residence.stop()
        raise
    try:
        agencies = start_agencies(state)
    except BaseException:
        residence.stop()
        civil.stop()
        raise
    cadastre_db = state / "cadastre.db"
    if not cadastre_db.exists():
        cadastre.create_database(cadastre_db)
    identity = DemoIdentityProvider()
    try:
        identity_server = serve_in_thread(identity.app())
    except BaseException:
        residence.stop()
        civil.stop()
        raise
    identity.issuer = identity_server.url
    node_socket = listening_socket("127.0.0.1", port)  # its URL goes into the config
    url = f"http://127.0.0.1:{node_socket.getsockname()[1]}"
    try:
        config_path = write_config(
            state,
            residence_url=residence.url,
            cadastre_db=cadastre_db,
            token_sha256=digest,
            listen=f"127.0.0.1:{node_socket.getsockname()[1]}",
            pki=pki,
            civil_wsdl=f"{civil.url}{civil_registry.WSDL_PATH}?wsdl",
            archivist_sha256=archivist_digest,
            officer_sha256=officer_digest,
            agencies=agencies.urls(),
            public_url=url,
            key_passphrase=DEMO_KEY_PASSPHRASE if pki else None,
            citizens={"issuer": identity.issuer, "audience": AUDIENCE,
                      "jwks_url": identity.jwks_url},
        )
        settings = load_settings(config_path)
        gateway: RunningServer | ServeProcess
        if workers > 1:
            node_socket.close()  # the workers' supervisor binds the address again
            gateway = serve_process(
                config_path, workers=workers, port=int(url.rsplit(":", 1)[1]),
                log=state / "node.log",
            )  # fmt: skip
            transport = open_transport(
                settings.transport_url(), node=f"{settings.node.name}-demo",
                durable_sync=settings.transport.durable_sync,
            )  # fmt: skip
            node = Node(settings, transport=transport)
            node.inbox = node.open_inbox()  # the officials' desks, as `run_bus.py inbox` opens them
        else:
            node = Node(settings)
            gateway = serve_in_thread(create_gateway(node), sock=node_socket,
                                      **server_options(settings.http))
    except BaseException:
        node_socket.close()
        residence.stop()
        civil.stop()
        agencies.stop()
        identity_server.stop()
        raise
    return DemoStack(
        state, config_path, token, residence, gateway, node, owns, pki, civil, archivist,
        agencies=agencies, officer=officer, identity=identity, identity_server=identity_server,
    )


def verify_answer(
    answer: dict[str, Any], provider_key: Path | TrustStore, provider: str
) -> bool:
    """Verify a signed answer as the portal would: with the provider's public key (a path) or
    a trust store of its certificate and the bus CA's, and nothing else."""
    trust = (
        StaticTrustStore.from_files({provider: provider_key})
        if isinstance(provider_key, Path)
        else provider_key
    )
    unsigned = {k: v for k, v in answer.items() if k != "signature"}
    try:
        signer = JwsVerifier(trust).verify_json(unsigned, str(answer.get("signature", "")))
    except SigningError:
        return False
    return signer.member == provider


def exchange_all(stack: DemoStack) -> tuple[Table, bool]:
    table = Table(title="Exchanges through the bus (as the portal)", title_justify="left")
    columns = ("#", "service", "subject", "purpose", "outcome", "latency", "signature", "number")
    for column in columns:
        table.add_column(
            column,
            justify="right" if column in ("#", "latency") else "left",
            no_wrap=column != "outcome",
        )
    all_as_expected = True
    headers = {"Authorization": f"Bearer {stack.token}", "X-Bus-User": "demo-officer-1"}
    with httpx.Client(base_url=stack.gateway.url, headers=headers, timeout=15) as client:
        for i, ask in enumerate(scenario_asks(), 1):
            started = time.perf_counter()
            r = client.post(
                f"/v1/services/{ask.service}",
                json=ask.body or {"pinfl": ask.pinfl},
                headers={"X-Bus-Purpose": ask.purpose},
            )
            latency_ms = (time.perf_counter() - started) * 1000
            body = r.json()
            if r.status_code == 200:
                provider = ask.service.split("/")[0]
                ok = verify_answer(body, stack.trust_for(provider), provider)
                outcome = f"200 {summary(ask.service, body['payload'])}"
                signature = "[green]verified[/green]" if ok else "[red]INVALID[/red]"
                number = r.headers.get("X-Bus-Request-Number", "")
                ok &= bool(number)
                stack.numbers.append(number)
            else:
                ok = True
                outcome = f"{r.status_code} {body.get('code')}"
                signature = number = "-"
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
                number,
                style=style,
            )
    return table, all_as_expected


def check_document(stack: DemoStack, number: str) -> tuple[bool, str]:
    """Ask the public verification page about ``number`` as a QR scan would; (valid, line)."""
    url = f"{stack.gateway.url}/verify/{number}"
    r = httpx.get(url, headers={"Accept": "application/json"}, timeout=10)
    if r.status_code != 200:
        return False, f"{url}: {r.status_code}"
    view = r.json()
    signature = view["signature"]
    valid = bool(signature["valid"])
    state = "[green]valid[/green]" if valid else f"[red]{signature['state']}[/red]"
    return valid, (
        f"{number}: {view['service']} by {view['provider']}, issued {view['issued_at'][:19]}, "
        f"signature {state}; verify at {url}"
    )


def run_demo(
    console: Console,
    *,
    keep: bool = False,
    state_dir: Path | None = None,
    port: int = 0,
    pki: bool = True,
    workers: int = 1,
) -> int:
    with console.status("starting demo agencies and a bus node…"):
        stack = start_stack(state_dir, port=port, pki=pki, workers=workers)
    configure_logging(stack.node.settings.log_level, path=stack.state / "node.log")
    try:
        console.print(f"residence registry (REST/JSON agency) at {stack.residence.url}")
        if stack.civil is not None:
            console.print(
                f"civil registry (SOAP agency) at {stack.civil.url}{civil_registry.WSDL_PATH}?wsdl"
            )
        console.print(f"cadastre database at {stack.state / 'cadastre.db'} (read-only SQL adapter)")
        if stack.agencies is not None:
            a = stack.agencies
            console.print(f"pension fund (SOAP) at {a.urls().pension_wsdl}, enforcement bureau "
                          f"(REST) at {a.enforcement.url}, social protection (REST) at "
                          f"{a.social.url}, education register database at {a.education_db}",
                          soft_wrap=True, highlight=False)
        processes = f", {workers} worker processes" if workers > 1 else ""
        console.print(
            f"bus node {stack.node.name} at {stack.gateway.url}, embedded transport{processes}"
        )
        console.print(f"config {stack.config_path}, JSON log {stack.state / 'node.log'}")
        if stack.pki:
            console.print(f"trust: the demo CA in {stack.state / 'ca'}, member certificates")
        if stack.identity is not None:
            console.print(f"identity provider (OpenID Connect, demo) at {stack.identity.issuer}")
        console.print(
            f"service catalogue: {stack.gateway.url}/catalog (JSON: /v1/catalog; "
            f"python run_bus.py catalog --config {stack.config_path})", soft_wrap=True
        )
        table, ok = exchange_all(stack)
        console.print(table)
        ok &= _show_bundle(console, stack)
        ok &= _show_applications(console, stack)
        ok &= _show_archive(console, stack)
        if stack.numbers:
            valid, line = check_document(stack, stack.numbers[0])
            ok &= valid
            console.print(f"document {line}", soft_wrap=True)
        ok &= show_audit(console, stack)
        ok &= show_citizen_document(console, stack.gateway.url, stack.node, stack.numbers,
                                    stack.identity)
        console.print(
            "[green]every exchange ended as expected[/green]"
            if ok
            else "[red]some exchanges did not end as expected[/red]"
        )
        if keep:
            print_waiting_task(console, stack)
            print_try_it(console, stack)
            wait_for_interrupt()
        return 0 if ok else 1
    except httpx.TransportError as exc:  # the node went away mid-demo: say what its log says
        _print_node_gone(console, stack, exc)
        return 1
    finally:
        stack.stop()


def _print_node_gone(console: Console, stack: DemoStack, exc: httpx.TransportError) -> None:
    gateway = stack.gateway
    state = ("still running" if not isinstance(gateway, ServeProcess) or gateway.running
             else f"exited with {gateway.proc.returncode}")
    console.print(f"[red]the node stopped answering[/red] ({type(exc).__name__}: {exc}); its "
                  f"process is {state}. Its warnings and errors, from {stack.state / 'node.log'}:",
                  soft_wrap=True, highlight=False)
    log = stack.state / "node.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    notable = [line for line in lines
               if '"level":"warning"' in line or '"level":"error"' in line or "Traceback" in line]
    for line in notable[-15:] or ["(none)"]:
        console.print(line[:400], soft_wrap=True, highlight=False, markup=False)


def _show_bundle(console: Console, stack: DemoStack) -> bool:
    """The once-only flow (``demo.bundle``): several agencies' documents in one request."""
    headers = {"Authorization": f"Bearer {stack.token}", "X-Bus-User": "demo-officer-1"}
    with httpx.Client(base_url=stack.gateway.url, headers=headers, timeout=15) as client:
        return show_bundle(console, client, lambda provider, answer: verify_answer(
            answer, stack.trust_for(provider), provider))


def _show_applications(console: Console, stack: DemoStack) -> bool:
    """The transactional services: the child-birth benefit (``demo.child_benefit``), its
    evidence once-only, and an application decided by an official
    (``demo.permanent_registration``), the demo playing the passport officer."""
    if stack.agencies is None or stack.node.inbox is None:
        return True
    social_db = stack.agencies.social_db
    headers = {"Authorization": f"Bearer {stack.token}", "X-Bus-User": "demo-officer-1"}

    def verify(provider: str, answer: dict[str, Any]) -> bool:
        return verify_answer(answer, stack.trust_for(provider), provider)

    with httpx.Client(base_url=stack.gateway.url, headers=headers, timeout=15) as client:
        ok = show_child_benefit(console, client, verify,
                                lambda application: applications_recorded(social_db, application))
        return ok & show_permanent_registration(console, client, stack.node.inbox, verify)


def _show_archive(console: Console, stack: DemoStack) -> bool:
    """The operator fallback route (``demo.archive``), the demo playing the archivist."""
    provider = ARCHIVE.split("/")[0]
    trust = stack.trust_for(provider)
    headers = {"Authorization": f"Bearer {stack.token}", "X-Bus-User": "demo-officer-1"}
    assert stack.node.inbox is not None
    with httpx.Client(base_url=stack.gateway.url, headers=headers, timeout=15) as client:
        return show_archive(
            console, client, stack.node.inbox, lambda answer: verify_answer(answer, trust, provider)
        )


def show_audit(console: Console, stack: DemoStack) -> bool:
    """The audit log's chain, and the first person's "who read my data" report as the portal
    would fetch it; True when the chain holds and the report lists that person's answers."""
    count, head, broken = verify(stack.node.audit.store.entries())
    if broken is not None:
        console.print(f"[red]audit log broken at entry {broken.seq}: {broken.detail}[/red]")
        return False
    console.print(f"audit log: {count} entries, chain verified, head {head[:16]}…")
    person = PEOPLE[0]
    if stack.identity is not None:  # the citizen, signed in at the (demo) identity provider
        how = "with the citizen's ID token"
        headers = {"Authorization": f"Bearer {stack.identity.id_token(person.pinfl)}"}
    else:
        how = "by the portal"
        headers = {
            "Authorization": f"Bearer {stack.token}",
            "X-Bus-Subject": person.pinfl,
            "X-Bus-Purpose": "citizen-request",
            "X-Bus-User": "citizen-portal-session",
        }
    r = httpx.get(f"{stack.gateway.url}/v1/citizens/me/access-log", headers=headers, timeout=10)
    if r.status_code != 200:
        console.print(f"[red]citizen access log: {r.status_code}[/red]")
        return False
    report = r.json()
    table = Table(
        title=f"Who obtained data about {report['subject']} (GET /v1/citizens/me/access-log, "
        f"{how})",
        title_justify="left",
    )
    for column in ("when (UTC)", "agency", "official", "purpose", "service"):
        table.add_column(column, no_wrap=True)
    for e in report["entries"]:
        table.add_row(
            e["when"][:19].replace("T", " "),
            e["agency"]["name"] or e["agency"]["code"],
            e["official"],
            e["purpose"],
            e["service_title"] or e["service"],
        )
    console.print(table)
    return report["count"] > 0
