"""The demo node's configuration: ``config/bus.yaml`` with this run's ports, paths and tokens.

``write_config`` writes ``<state>/bus.yaml`` from the example configuration: the agencies' URLs
and database, the keys folder (bare public keys, or certificates and the CA with ``pki``), the
embedded transport and the audit log in the state folder, the portal's and the archivist's
token digests, and callbacks allowed to loopback over http (``DEMO_CALLBACKS``: the demo's
portal and agencies all run on this machine). Without the civil registry's WSDL the civil
registry is left out of it. ``RESIDENCE``, ``PROPERTY`` and ``CIVIL`` are the demo's services.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import yaml

__all__ = ["CIVIL", "CONFIG_TEMPLATE", "DEMO_CALLBACKS", "PROPERTY", "RESIDENCE", "write_config"]

CONFIG_TEMPLATE = Path(__file__).resolve().parent.parent / "config" / "bus.yaml"
RESIDENCE = "residence-registry/residence-registration/v1"
PROPERTY = "cadastre/property-ownership/v1"
CIVIL = "civil-registry/birth-certificate/v1"
# The demo's portal and agencies all run on this machine, so its callbacks may reach loopback
# over http; a deployment names its members' hosts and keeps https (deploy/config/bus.yaml).
DEMO_CALLBACKS: dict[str, Any] = {
    "allowed_hosts": ["127.0.0.1", "localhost"],
    "require_https": False,
    "allowed_networks": ["127.0.0.0/8", "::1/128"],
}


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
) -> Path:
    """This run's configuration: the example config with the demo's ports, paths and token.

    ``pki``: members named by their certificates (``state/keys/<member>.crt``) and the CA in
    ``state/ca``; otherwise by their Ed25519 public keys (``state/keys/<member>.pub``).
    ``civil_wsdl``: the civil registry's WSDL URL; without it the civil registry (member,
    service, access rights) is left out of the configuration.
    """
    config: dict[str, Any] = yaml.safe_load(CONFIG_TEMPLATE.read_text())
    if civil_wsdl is None:
        _drop_member(config, CIVIL.split("/")[0])
    else:
        config["services"][CIVIL]["adapter"]["wsdl"] = civil_wsdl
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
    config["audit"] = {"url": f"sqlite:///{state / 'audit.db'}", "secret": _audit_secret(state)}
    config["state"] = f"sqlite:///{state / 'state.db'}"
    config["callbacks"] = DEMO_CALLBACKS
    config["services"][RESIDENCE]["adapter"]["base_url"] = residence_url
    config["services"][PROPERTY]["adapter"]["url"] = f"sqlite:///{cadastre_db}"
    path = state / "bus.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


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


def _audit_secret(state: Path) -> str:
    """The demo's key of the audit log's subject hashes, made once per state folder (a real
    deployment sets BUS_AUDIT__SECRET from its secrets)."""
    path = state / "audit.secret"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()
