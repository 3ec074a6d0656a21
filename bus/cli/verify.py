"""``run_bus.py verify FILE``: check a saved signed answer offline against the trust store.

Reads a response envelope saved as JSON (for instance from ``GET /v1/documents/{number}`` with
``Accept: application/json``, or the body of an answer), loads the trust store the node would
(``--config``: the CA certificate, the CRL and the members' certificates or public keys; no
private key, no network), and checks it as a saved document: the signature, that the provider
of the service signed it, that its certificate was valid when it was issued and is not revoked
now (``Seal.verify_issued``). Prints who signed it and the file's fingerprint (SHA-256, as on
the document and ``/verify``), never the payload. Exit 0 when it stands, 1 when it does not.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bus.cli.common import load_or_exit
from bus.core.envelope import MAX_ENVELOPE_BYTES, Envelope, Kind, utcnow
from bus.core.errors import BusError, SignatureInvalid
from bus.core.seal import Seal
from bus.node.trust import load_trust
from signing import SigningError

__all__ = ["verify_command"]

console = Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def verify_command(
    file: Annotated[Path, typer.Argument(help="a signed answer saved as JSON")],
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML configuration file")] = Path(
        "config/bus.yaml"
    ),
) -> None:
    """Check a saved signed answer offline: who signed it, and whether the signature stands."""

    settings = load_or_exit(config)
    try:
        data = file.read_bytes()[: MAX_ENVELOPE_BYTES + 1]
        envelope = Envelope.from_json(data)
    except OSError as exc:
        console.print(f"[red]cannot read {file}[/red]: {exc.strerror}", markup=True)
        raise typer.Exit(2) from None
    except BusError as exc:
        console.print(f"[red]INVALID[/red]: {exc.detail}")
        raise typer.Exit(1) from None
    try:
        seal = Seal({}, load_trust(settings, utcnow), clock=utcnow)
    except SigningError as exc:
        console.print(f"[red]cannot load the trust store[/red]: {exc.detail}")
        raise typer.Exit(2) from None
    what = f"{envelope.kind} of {envelope.service} for {envelope.client}"
    console.print(f"{file}: {what}, issued {envelope.issued_at.isoformat()}")
    console.print(f"fingerprint (SHA-256 of the file): {hashlib.sha256(data).hexdigest()}")
    if envelope.kind is Kind.request:
        console.print("[yellow]note[/yellow]: a request, not an answer")
    try:
        trusted = seal.verify_issued(envelope)
    except SignatureInvalid as exc:
        console.print(f"[red]INVALID[/red] ({exc.code}, {exc.reason}): {exc.detail}")
        raise typer.Exit(1) from None
    member = settings.members.get(trusted.member)
    name = f" ({member.name})" if member is not None and member.name else ""
    console.print(f"[green]valid[/green]: signed by {trusted.member}{name} with {trusted.kid}")
    if trusted.certificate is not None:
        assert trusted.not_after is not None
        ended = " (expired since)" if trusted.not_after < utcnow() else ""
        console.print(
            f"certificate {trusted.serial} of the bus CA, valid until "
            f"{trusted.not_after.isoformat()}{ended}, not revoked"
        )
    else:
        console.print("key trusted through its public key in the configuration (no certificate)")
