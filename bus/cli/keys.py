"""``run_bus.py keys ca init|issue|rotate|revoke|crl|list``: the bus certificate authority.

The CA folder (``--ca``, default ``var/ca``) holds the CA key, its certificate, the revocation
list and the record of what was issued (``signing.ca``); member keys and certificates go to the
keys folder (``--keys``, default ``var/keys``). Passphrases come from the environment, never
from the command line: ``BUS_CA_PASSPHRASE`` for the CA key, ``BUS_NODE__KEY_PASSPHRASE`` for
member keys (the same variable the node reads). Nodes read ``ca.crt`` and ``crl.pem``
(``trust: {ca: …, crl: …}``) and each member's ``<member>.crt`` (``certificate:``); they pick
up a new CRL or certificate bundle within ``trust.reload_s`` seconds, without a restart.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bus.core.envelope import MEMBER_PATTERN
from signing import CertificateAuthority, SigningError, issue_member, rotate_member
from signing.ca import MemberFiles

__all__ = ["register"]

console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
ca_app = typer.Typer(no_args_is_help=True, help="The bus certificate authority.")

CaDir = Annotated[Path, typer.Option("--ca", help="the CA folder")]
KeysDir = Annotated[Path, typer.Option("--keys", help="where member keys and certificates go")]
CaPassphrase = Annotated[
    str,
    typer.Option(
        envvar="BUS_CA_PASSPHRASE", hidden=True, show_default=False, help="CA key passphrase"
    ),
]
KeyPassphrase = Annotated[
    str,
    typer.Option(
        envvar="BUS_NODE__KEY_PASSPHRASE",
        hidden=True,
        show_default=False,
        help="member key passphrase",
    ),
]
Days = Annotated[int, typer.Option(min=1, max=3650, help="certificate lifetime in days")]


def _need(value: str, variable: str) -> bytes:
    if not value:
        err_console.print(f"[red]set {variable}[/red] (keys are encrypted at rest with it)")
        raise typer.Exit(2)
    return value.encode()


def _member(code: str) -> str:
    if not re.match(MEMBER_PATTERN, code):
        err_console.print(f"{code!r} is not a member code (lowercase letters, digits, '-')")
        raise typer.Exit(2)
    return code


def _open(ca_dir: Path, passphrase: str) -> CertificateAuthority:
    try:
        return CertificateAuthority.open(ca_dir, _need(passphrase, "BUS_CA_PASSPHRASE"))
    except SigningError as exc:
        err_console.print(f"[red]{exc.detail}[/red]", markup=False, highlight=False)
        raise typer.Exit(1) from None


def _member_files(
    operation: Callable[..., MemberFiles],
    refused: type[OSError],
    member: str,
    ca_dir: Path,
    keys_dir: Path,
    days: int,
    ca_passphrase: str,
    key_passphrase: str,
) -> MemberFiles:
    """Open the CA and run ``operation`` (issue or rotate) for ``member``; ``refused`` (the
    key exists / does not exist yet) is one line and exit 1."""
    ca = _open(ca_dir, ca_passphrase)
    secret = _need(key_passphrase, "BUS_NODE__KEY_PASSPHRASE")
    try:
        files: MemberFiles = operation(ca, keys_dir, _member(member), passphrase=secret, days=days)
    except refused as exc:
        err_console.print(f"[yellow]{exc}[/yellow]")
        raise typer.Exit(1) from None
    return files


@ca_app.command("init")
def ca_init(
    ca_dir: CaDir = Path("var/ca"),
    name: Annotated[str, typer.Option(help="the CA's common name")] = "Interagency bus CA",
    days: Annotated[int, typer.Option(min=1, max=36500, help="CA lifetime in days")] = 3650,
    ca_passphrase: CaPassphrase = "",
) -> None:
    """Create the bus CA: an encrypted key, a self-signed certificate, an empty CRL."""
    try:
        ca = CertificateAuthority.create(
            ca_dir, _need(ca_passphrase, "BUS_CA_PASSPHRASE"), name=name, days=days
        )
    except FileExistsError as exc:
        err_console.print(f"[yellow]{exc}[/yellow]")
        raise typer.Exit(1) from None
    console.print(f"CA {name!r}: {ca_dir / 'ca.key'} (encrypted), {ca.certificate_path}")
    console.print(f"revocation list: {ca.crl_path}")
    console.print(f"node config:\n  trust: {{ca: {ca.certificate_path}, crl: {ca.crl_path}}}")


def keys_issue(
    member: Annotated[str, typer.Argument(help="member code")],
    ca_dir: CaDir = Path("var/ca"),
    keys_dir: KeysDir = Path("var/keys"),
    days: Days = 365,
    ca_passphrase: CaPassphrase = "",
    key_passphrase: KeyPassphrase = "",
) -> None:
    """Give a member its first key and certificate (<member>.key, <member>.crt)."""
    files = _member_files(
        issue_member, FileExistsError, member, ca_dir, keys_dir, days, ca_passphrase, key_passphrase
    )
    serial = f"{files.certificate.serial_number:X}"
    console.print(f"{member}: {files.key} (encrypted, 0600), {files.certificates}")
    console.print(f"certificate {serial}, valid until {files.certificate.not_valid_after_utc}")
    console.print(f"config:\n  members:\n    {member}: {{certificate: {files.certificates}}}")


def keys_rotate(
    member: Annotated[str, typer.Argument(help="member code")],
    ca_dir: CaDir = Path("var/ca"),
    keys_dir: KeysDir = Path("var/keys"),
    days: Days = 365,
    ca_passphrase: CaPassphrase = "",
    key_passphrase: KeyPassphrase = "",
) -> None:
    """Give a member a new key at once; its older certificates stay valid until they expire."""
    files = _member_files(
        rotate_member,
        FileNotFoundError,
        member,
        ca_dir,
        keys_dir,
        days,
        ca_passphrase,
        key_passphrase,
    )
    console.print(
        f"{member}: new key {files.key}, certificate {files.certificate.serial_number:X} "
        f"first in {files.certificates}"
    )
    console.print(
        "Nodes trust the new certificate at once (and the old one until it expires); a node "
        "hosting the member signs with the new key within a second, no restart. On other "
        "machines copy the .crt before the .key (use revoke, not rotate, for a compromised key)."
    )


def keys_revoke(
    which: Annotated[str, typer.Argument(help="a member code (all its certificates) or a serial")],
    reason: Annotated[
        str, typer.Option(help="key_compromise, superseded, cessation_of_operation, …")
    ] = "unspecified",
    ca_dir: CaDir = Path("var/ca"),
    ca_passphrase: CaPassphrase = "",
) -> None:
    """Revoke certificates and publish a new CRL (nodes apply it without a restart)."""
    ca = _open(ca_dir, ca_passphrase)
    records = [r for r in ca.find(which) if r.revoked_at is None]
    if not records:
        err_console.print(f"no unrevoked certificate for {which!r} in {ca_dir}")
        raise typer.Exit(1)
    for record in records:
        try:
            ca.revoke(record.serial_number, reason)
        except ValueError as exc:
            err_console.print(str(exc))
            raise typer.Exit(2) from None
        console.print(f"revoked {record.serial} ({record.member}, {record.kid})")
    console.print(f"published {ca.crl_path}: copy it to nodes on other machines")


def keys_crl(
    ca_dir: CaDir = Path("var/ca"),
    days: Annotated[int, typer.Option(min=1, max=366, help="next update in days")] = 30,
    ca_passphrase: CaPassphrase = "",
) -> None:
    """Re-sign the CRL with a new next-update date (do it before the current one passes)."""
    ca = _open(ca_dir, ca_passphrase)
    console.print(f"published {ca.publish_crl(days=days)}")


def keys_list(ca_dir: CaDir = Path("var/ca"), ca_passphrase: CaPassphrase = "") -> None:
    """The certificates this CA issued, with their state."""
    ca = _open(ca_dir, ca_passphrase)
    table = Table(title=f"certificates issued by {ca_dir}", title_justify="left")
    for column in ("serial", "member", "key id", "valid until", "revoked"):
        table.add_column(column, no_wrap=True)
    for r in ca.issued():
        table.add_row(r.serial, r.member, r.kid, r.not_after[:19], r.revoked_at or "-")
    console.print(table)


def register(keys_app: typer.Typer) -> None:
    """Add the CA commands to ``run_bus.py keys``."""
    keys_app.add_typer(ca_app, name="ca")
    keys_app.command("issue")(keys_issue)
    keys_app.command("rotate")(keys_rotate)
    keys_app.command("revoke")(keys_revoke)
    keys_app.command("crl")(keys_crl)
    keys_app.command("list")(keys_list)
