"""``run_bus.py audit verify | export | subject``: the audit log for operators and inspectors.

``verify`` walks the hash chain and names the first broken link (exit 1), or prints the number
of entries and the head hash (note it elsewhere; ``--head`` later proves nothing was cut off or
rewritten since). ``export --since`` writes entries as JSON lines (keyed subjects, never
payloads). ``subject PINFL`` lists who obtained data about one person (needs ``audit.secret``,
from ``BUS_AUDIT__SECRET``); with ``--all``, every entry about the person: refusals and the
operators who read a task about them too, with when it was recorded, the outcome and the side.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import orjson
import typer

from bus.cli.common import load_or_exit
from bus.config.settings import BusSettings
from bus.core.errors import BusUnavailable
from bus.records.audit import AuditEntry, AuditStore, open_audit_store, verify
from signing.files import private_file

__all__ = ["register"]

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="YAML configuration file")]


def _store(settings: BusSettings) -> AuditStore:
    url = settings.audit.url
    if url is None:  # load_settings always sets it
        raise typer.BadParameter("the configuration names no audit log")
    try:
        return open_audit_store(url.get_secret_value(), table=settings.audit.table)
    except BusUnavailable as exc:
        typer.echo(f"cannot open the audit log: {exc.detail}", err=True)
        raise typer.Exit(2) from None


def _settings(config: Path) -> BusSettings:

    return load_or_exit(config, check_references=False)  # no key files needed here


def _utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _when(iso: object) -> str:
    return str(iso)[:19].replace("T", " ")


def register(app: typer.Typer) -> None:
    """Add the ``audit`` commands to ``app`` (``bus.cli.app``)."""
    audit_app = typer.Typer(
        no_args_is_help=True, help="The audit log: verify the chain, export, a person's report."
    )
    app.add_typer(audit_app, name="audit")

    @audit_app.command("verify")
    def audit_verify(
        config: ConfigOption = Path("config/bus.yaml"),
        head: Annotated[
            str | None,
            typer.Option(help="a head hash noted earlier: it must still be in the chain"),
        ] = None,
    ) -> None:
        """Walk the hash chain; report the first broken link (edited, missing, out of order)."""
        store = _store(_settings(config))
        seen_head = head is None

        def noting_head() -> Iterator[AuditEntry]:
            nonlocal seen_head
            for entry in store.entries():
                seen_head = seen_head or entry.hash == head
                yield entry

        try:
            count, last, broken = verify(noting_head())
        finally:
            store.close()
        if broken is not None:
            typer.echo(
                f"BROKEN at entry {broken.seq} ({broken.kind}): {broken.detail}; "
                f"{count} entries before it hold"
            )
            raise typer.Exit(1)
        if not seen_head:
            typer.echo(
                f"BROKEN: head {head} is not in the chain of {count} entries "
                "(entries cut off, or hashes rewritten, since it was noted)"
            )
            raise typer.Exit(1)
        typer.echo(f"OK: {count} entries, head {last}")

    @audit_app.command("export")
    def audit_export(
        since: Annotated[
            dt.datetime, typer.Option(help="entries recorded at or after (ISO 8601, UTC)")
        ],
        config: ConfigOption = Path("config/bus.yaml"),
        output: Annotated[Path | None, typer.Option(help="file to write [default: stdout]")] = None,
    ) -> None:
        """Entries as JSON lines, oldest first (keyed subjects and digests, never payloads)."""
        store = _store(_settings(config))
        out = private_file(output).open("wb") if output is not None else sys.stdout.buffer
        count = 0
        try:
            for entry in store.entries(since=_utc(since)):
                out.write(orjson.dumps({"seq": entry.seq, **entry.hashed_fields(),
                                        "hash": entry.hash}) + b"\n")
                count += 1
        finally:
            store.close()
            if output is not None:
                out.close()
        if output is not None:
            typer.echo(f"{count} entries written to {output}")

    @audit_app.command("subject")
    def audit_subject(
        pinfl: Annotated[str, typer.Argument(help="the person's PINFL")],
        config: ConfigOption = Path("config/bus.yaml"),
        limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 200,
        every: Annotated[bool, typer.Option(
            "--all", help="every entry about the person: refusals and operators' readings too"
        )] = False,
    ) -> None:
        """Who obtained data about a person: when, which agency, which official, what for."""
        import hashlib
        import hmac

        from rich.console import Console
        from rich.table import Table

        from bus.gateway.citizens import report
        from schemas import mask_identifier
        from schemas.identifiers import validate_pinfl

        try:
            validate_pinfl(pinfl)
        except ValueError as exc:
            typer.echo(f"not a PINFL: {exc}", err=True)
            raise typer.Exit(2) from None
        settings = _settings(config)
        secret = settings.audit.secret
        if secret is None:
            typer.echo("audit.secret is not set (BUS_AUDIT__SECRET)", err=True)
            raise typer.Exit(2)
        key = hmac.new(secret.get_secret_value().encode(), pinfl.encode(), hashlib.sha256)
        store = _store(settings)
        try:
            found = report(store.entries(subject=key.hexdigest()), settings, limit, every=every)
        finally:
            store.close()
        title = (f"{len(found)} audit entries about {mask_identifier(pinfl)}" if every else
                 f"{len(found)} time(s) data about {mask_identifier(pinfl)} was obtained")
        table = Table(title=title, title_justify="left")
        columns = ["when (UTC)", "agency", "official", "purpose", "service", "provider"]
        for column in columns + (["recorded (UTC)", "outcome", "by"] if every else []):
            table.add_column(column)
        for item in found:
            agency, provider = item["agency"], item["provider"]
            row = [
                _when(item["when"]),
                agency["name"] or agency["code"],
                item["official"],
                item["purpose"],
                item["service_title"] or item["service"],
                provider["name"] or provider["code"],
            ]
            if every:
                row += [_when(item["recorded"]), item["outcome"], item["side"]]
            table.add_row(*row)
        Console(width=None if sys.stdout.isatty() else 200).print(table)
