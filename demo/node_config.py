"""The demo node's configuration: ``config/bus.yaml`` with this run's ports, paths and tokens.

``write_config`` writes ``<state>/bus.yaml`` (mode 0600) from the example configuration: the
agencies' URLs and database, the keys folder (bare public keys, or certificates and the CA with
``pki``), the embedded transport and the audit log in the state folder, the node's public URL
for the documents' verify links, the portal's, the archivist's and the passport officer's token
digests, the audit secret as a 0600 file in the state folder (``{file: …}``), and — the one
plain secret, which is why the file says ``allow_plain_secrets: true`` (demo only;
``check-config`` warns) — the demo's fixed key passphrase when keys are encrypted. Callbacks stay
as the example has them: none allowed (the demo pushes no results; a test that does names its
own receiver). Without the civil registry's WSDL the civil registry is left out of it; without
``AgencyUrls`` the pension fund, the education register, the enforcement bureau and the
social-protection agency are. ``RESIDENCE``, ``PROPERTY``, ``CIVIL`` and the others below are
the demo's services.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from signing.files import private_file, write_private

__all__ = [
    "CHILD_BENEFIT",
    "CIVIL",
    "CONFIG_TEMPLATE",
    "DEBTS",
    "ELIGIBILITY",
    "PERMANENT_REGISTRATION",
    "PROPERTY",
    "RESIDENCE",
    "RESIDENCE_LENGTH",
    "SALARY",
    "STUDY",
    "AgencyUrls",
    "write_config",
]

CONFIG_TEMPLATE = Path(__file__).resolve().parent.parent / "config" / "bus.yaml"
RESIDENCE = "residence-registry/residence-registration/v1"
PROPERTY = "cadastre/property-ownership/v1"
CIVIL = "civil-registry/birth-certificate/v1"
RESIDENCE_LENGTH = "residence-registry/residence-duration/v1"
PERMANENT_REGISTRATION = "residence-registry/permanent-registration/v1"
SALARY = "pension-fund/salary-certificate/v1"
STUDY = "education-register/study-certificate/v1"
DEBTS = "enforcement-bureau/debt-check/v1"
ELIGIBILITY = "social-protection/benefit-eligibility/v1"
CHILD_BENEFIT = "social-protection/child-birth-benefit/v1"


@dataclass(frozen=True)
class AgencyUrls:
    """Where this run's pension fund, education register, enforcement bureau and
    social-protection agency are."""

    pension_wsdl: str
    education_db: Path
    enforcement_url: str
    social_url: str


def write_config(
    state: Path,
    *,
    residence_url: str,
    cadastre_db: Path,
    token_sha256: str,
    listen: str = "127.0.0.1:0",
    pki: bool = False,
    civil_wsdl: str | None = None,
    archivist_sha256: str | None = None,
    public_url: str | None = None,
    key_passphrase: str | None = None,
    officer_sha256: str | None = None,
    agencies: AgencyUrls | None = None,
) -> Path:
    """This run's configuration: the example config with the demo's ports, paths and token.

    ``pki``: members named by their certificates (``state/keys/<member>.crt``) and the CA in
    ``state/ca``; otherwise by their Ed25519 public keys (``state/keys/<member>.pub``).
    ``civil_wsdl``: the civil registry's WSDL URL; without it the civil registry (member,
    service, access rights) is left out of the configuration; likewise the four agencies of
    ``agencies`` without it. ``public_url``: where the node is reached (default
    ``http://{listen}``). ``key_passphrase``: the members' keys' (demo-only) passphrase, written
    into the file. ``officer_sha256``: the passport officer's password digest.
    """
    config: dict[str, Any] = yaml.safe_load(CONFIG_TEMPLATE.read_text())
    if civil_wsdl is None:
        _drop_member(config, CIVIL.split("/")[0])
    else:
        config["services"][CIVIL]["adapter"]["wsdl"] = civil_wsdl
    if agencies is None:
        for service in (SALARY, STUDY, DEBTS, ELIGIBILITY):
            _drop_member(config, service.split("/")[0])
    else:
        services = config["services"]
        services[SALARY]["adapter"]["wsdl"] = agencies.pension_wsdl
        services[STUDY]["adapter"]["url"] = f"sqlite:///{agencies.education_db}"
        services[DEBTS]["adapter"]["base_url"] = agencies.enforcement_url
        services[ELIGIBILITY]["adapter"]["base_url"] = agencies.social_url
        services[CHILD_BENEFIT]["adapter"]["base_url"] = agencies.social_url
    config["node"].update(keys_dir=str(state / "keys"), listen=listen)
    config["transport"] = {"url": f"embedded://{state / 'queues.db'}"}
    config.pop("trust", None)
    for code, member in config["members"].items():
        member.pop("public_key", None)
        member.pop("certificate", None)
        if pki:
            member["certificate"] = str(state / "keys" / f"{code}.crt")
        else:
            member["public_key"] = str(state / "keys" / f"{code}.pub")
    if pki:
        config["trust"] = {"ca": str(state / "ca" / "ca.crt"), "crl": str(state / "ca" / "crl.pem")}
    config["members"]["portal"]["api_token_sha256"] = token_sha256
    if archivist_sha256 is not None:
        config["inbox"]["operators"]["archivist"]["token_sha256"] = archivist_sha256
    if officer_sha256 is not None:
        config["inbox"]["operators"]["passport-officer"]["token_sha256"] = officer_sha256
    config["audit"] = {
        "url": f"sqlite:///{state / 'audit.db'}",
        "secret": {"file": str(_audit_secret(state))},
    }
    config["documents"]["public_url"] = public_url or f"http://{listen}"
    config["allow_plain_secrets"] = True  # a demo: its key passphrase is a fixed, public one
    if key_passphrase is not None:
        config["node"]["key_passphrase"] = key_passphrase
    config["services"][RESIDENCE]["adapter"]["base_url"] = residence_url
    config["services"][RESIDENCE_LENGTH]["adapter"]["base_url"] = residence_url
    config["services"][PROPERTY]["adapter"]["url"] = f"sqlite:///{cadastre_db}"
    return write_private(state / "bus.yaml", yaml.safe_dump(config, sort_keys=False))


def _drop_member(config: dict[str, Any], member: str) -> None:
    config["members"].pop(member, None)
    config["node"]["hosts"] = [m for m in config["node"]["hosts"] if m != member]
    config["services"] = {
        sid: svc for sid, svc in config["services"].items() if not sid.startswith(member + "/")
    }
    config["access"] = [r for r in config["access"] if not r["service"].startswith(member + "/")]
    operators = config.get("inbox", {}).get("operators", {})
    for name, operator in list(operators.items()):
        operator["members"] = [m for m in operator["members"] if m != member]
        if not operator["members"]:
            del operators[name]


def _audit_secret(state: Path) -> Path:
    """The demo's key of the audit log's subject hashes, a 0600 file made once per state
    folder (a real deployment sets BUS_AUDIT__SECRET, or names its own 0600 file)."""
    path = state / "audit.secret"
    if not path.exists() or not path.read_text().strip():
        write_private(path, secrets.token_urlsafe(32))
    return private_file(path)
