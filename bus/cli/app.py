"""The ``run_bus.py`` command line (typer): serve a node, check a config, manage keys.

``run_bus.py`` adds the ``demo`` and ``bench`` commands on top of this app (both sit above the bus).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.table import Table

from bus.cli.adapters import adapters_command
from bus.cli.audit import register as register_audit_commands
from bus.cli.catalog import catalog_command
from bus.cli.common import console, err_console, load_or_exit, warn_plain_secrets
from bus.cli.dead_letters import dead_letters_executed
from bus.cli.inbox import register as register_inbox_commands
from bus.cli.keys import register as register_ca_commands
from bus.cli.verify import verify_command
from bus.ops.dead_letters import describe
from bus.ops.logs import configure_logging
from bus.transport import Transport, open_transport
from signing import generate_member_key

__all__ = ["app", "console", "load_or_exit"]

log = logging.getLogger("bus.cli")
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Interagency data-exchange bus: run a node, a demo, or manage keys.",
)
keys_app = typer.Typer(
    no_args_is_help=True, help="Member keys, the bus CA and its certificates, API tokens."
)
dlq_app = typer.Typer(no_args_is_help=True, help="Dead letters: list, show, replay, purge.")
schemas_app = typer.Typer(no_args_is_help=True, help="Shared schemas.")
access_app = typer.Typer(no_args_is_help=True, help="Access rights: explain a decision.")
documents_app = typer.Typer(
    no_args_is_help=True, help="Documents and asynchronous results: retention."
)
app.add_typer(keys_app, name="keys")
register_ca_commands(keys_app)
app.command("verify")(verify_command)
app.command("adapters")(adapters_command)
app.command("catalog")(catalog_command)
app.add_typer(schemas_app, name="schemas")
app.add_typer(dlq_app, name="dlq")
app.add_typer(access_app, name="access")
app.add_typer(documents_app, name="documents")
register_audit_commands(app)
register_inbox_commands(app)

DEMO_MEMBERS = [
    "portal", "residence-registry", "cadastre", "civil-registry", "state-archive",
    "pension-fund", "education-register", "enforcement-bureau", "social-protection",
]


@app.command("check-config")
def check_config(file: Annotated[Path, typer.Argument(help="YAML configuration file")]) -> None:
    """Validate a configuration file and report every problem with file, path and expectation."""
    settings = load_or_exit(file)
    warn_plain_secrets(file, settings)
    console.print(
        f"[green]{file} is valid[/green]: {len(settings.members)} members, "
        f"{len(settings.services)} services, {len(settings.access)} access rights; "
        f"node {settings.node.name} hosts {', '.join(settings.node.hosts) or 'nobody'}"
    )


@app.command()
def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML configuration file")] = Path(
        "config/bus.yaml"
    ),
    listen: Annotated[str | None, typer.Option(help="host:port, overrides node.listen")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="processes of this node sharing its socket, transport and state "
            "(bus.cli.workers); default: the number of cores",
        ),
    ] = None,
) -> None:
    """Run a node for a real deployment: the HTTP gateway and the providers it hosts."""
    from rich.markup import escape

    from bus.cli.workers import StartFailure, default_workers, serve_workers, start_node
    from bus.gateway.app import create_app
    from bus.gateway.server import server_options

    settings = load_or_exit(config)
    warn_plain_secrets(config, settings)
    configure_logging(settings.log_level)
    host, _, port = (listen or settings.node.listen).rpartition(":")
    count = workers if workers is not None else default_workers()
    try:
        if count > 1:
            raise typer.Exit(serve_workers(config, settings, host, int(port), count))
        node = start_node(settings)
    except StartFailure as exc:  # a key, the audit secret or store: say which, no trace
        err_console.print(f"[red]cannot start[/red]: {escape(exc.detail)}", highlight=False)
        raise typer.Exit(2) from None
    # uvicorn's own records (start-up, errors) go through the same JSON handler (log_config=None)
    uvicorn.run(create_app(node), host=host, port=int(port), log_config=None, access_log=False,
                **server_options(settings.http))  # slow clients closed, connections capped


def new_token() -> tuple[str, str]:
    """A fresh API token and the SHA-256 hex digest that goes into the config."""
    token = secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode()).hexdigest()


@keys_app.command("init")
def keys_init(
    directory: Annotated[Path, typer.Argument(help="where to write <member>.key/.pub")],
    member: Annotated[list[str] | None, typer.Option("--member", "-m", help="repeatable")] = None,
    force: Annotated[bool, typer.Option(help="overwrite existing keys")] = False,
) -> None:
    """Create Ed25519 keys for members (default: the demo members)."""
    for code in member or DEMO_MEMBERS:
        try:
            private, public = generate_member_key(directory, code, overwrite=force)
        except FileExistsError as exc:
            err_console.print(f"[yellow]{exc}[/yellow] (use --force to replace)")
            raise typer.Exit(1) from None
        console.print(f"{code}: {private} (private, 0600), {public}")


@keys_app.command("token")
def keys_token(member: Annotated[str, typer.Argument(help="member code")]) -> None:
    """Make an API token for a member: give the token to the member, the hash to the config."""
    token, digest = new_token()
    console.print(f"token for {member} (give it to the member; it is not stored):\n  {token}")
    console.print(f"config:\n  members:\n    {member}:\n      api_token_sha256: {digest}")


@schemas_app.command("export")
def schemas_export(
    directory: Annotated[Path, typer.Argument(help="output folder")] = Path("schemas/json"),
) -> None:
    """Write the JSON Schema of every shared schema."""
    import schemas
    from schemas import export_json_schemas

    models = [getattr(schemas, n) for n in schemas.__all__]
    models = [
        m
        for m in models
        if isinstance(m, type) and issubclass(m, schemas.SharedRequest | schemas.SharedResponse)
    ]
    for path in export_json_schemas(models, directory):
        console.print(str(path))


ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="YAML configuration file")]


@contextlib.contextmanager
def _transport(config: Path) -> Iterator[Transport]:
    settings = load_or_exit(config)
    transport = open_transport(
        settings.transport_url(),
        node=f"{settings.node.name}-cli",
        durable_sync=settings.transport.durable_sync,
    )
    try:
        yield transport
    finally:
        transport.close()


@dlq_app.command("list")
def dlq_list(
    config: ConfigOption = Path("config/bus.yaml"),
    limit: Annotated[int, typer.Option(help="at most this many")] = 100,
) -> None:
    """List dead letters, oldest first: id, queue, reason, attempts, message id, and whether
    the request was executed at its agency (yes/no from the audit log; ? when it cannot be
    read; - for what is not a request)."""
    with _transport(config) as transport:
        letters = transport.dead_letters(limit)
    described = [describe(letter) for letter in letters]
    ran = dead_letters_executed(load_or_exit(config), described)
    table = Table(title=f"{len(letters)} dead letter(s)", title_justify="left")
    for column in ("id", "failed at", "queue", "reason", "attempts", "message id", "executed"):
        table.add_column(column, no_wrap=column in ("id", "message id", "failed at", "executed"))
    for d in described:
        table.add_row(
            d["id"],
            d["failed_at"][:19],
            d["queue"],
            d["reason"],
            str(d["attempts"]),
            d["message_id"],
            ran.get(d["id"], "-"),
        )
    console.print(table)


@dlq_app.command("show")
def dlq_show(
    letter_id: Annotated[str, typer.Argument(help="dead letter id from `dlq list`")],
    config: ConfigOption = Path("config/bus.yaml"),
) -> None:
    """Show one dead letter's reason and envelope header (never the payload)."""
    with _transport(config) as transport:
        found = [d for d in transport.dead_letters(10_000) if d.id == letter_id]
    if not found:
        err_console.print(f"no dead letter {letter_id!r}")
        raise typer.Exit(1)
    console.print_json(data=describe(found[0]))


@dlq_app.command("replay")
def dlq_replay(
    letter_id: Annotated[str, typer.Argument(help="dead letter id from `dlq list`")],
    config: ConfigOption = Path("config/bus.yaml"),
) -> None:
    """Put a dead letter back on its queue with its original message id."""
    with _transport(config) as transport:
        try:
            message = transport.replay(letter_id)
        except KeyError:
            err_console.print(f"no dead letter {letter_id!r}")
            raise typer.Exit(1) from None
    log.info(
        "dead letter replayed",
        extra={"bus": {"message_id": message.message_id, "dead_letter": letter_id}},
    )
    console.print(f"replayed {letter_id}: message {message.message_id}")


@dlq_app.command("purge")
def dlq_purge(
    letter_id: Annotated[str | None, typer.Argument(help="one dead letter; all with --all")] = None,
    all_: Annotated[bool, typer.Option("--all", help="purge every dead letter")] = False,
    config: ConfigOption = Path("config/bus.yaml"),
) -> None:
    """Delete one dead letter, or all of them with --all."""
    if (letter_id is None) == (not all_):
        err_console.print("give a dead letter id, or --all (not both)")
        raise typer.Exit(2)
    with _transport(config) as transport:
        count = transport.purge_dead_letters(letter_id)
    if letter_id is not None and count == 0:
        err_console.print(f"no dead letter {letter_id!r}")
        raise typer.Exit(1)
    console.print(f"purged {count} dead letter(s)")


@documents_app.command("purge")
def documents_purge(config: ConfigOption = Path("config/bus.yaml")) -> None:
    """Delete signed answers and asynchronous results past their retention period, now.

    A running node does the same at start and every hour; the numbers stay verifiable."""
    from bus.core.envelope import utcnow
    from bus.core.errors import BusUnavailable
    from bus.records.documents import DocumentStore
    from bus.records.retention import purge

    settings = load_or_exit(config)
    assert settings.documents.path is not None  # load_settings sets it
    store = DocumentStore(settings.documents.path, prefix=settings.documents.prefix,
                          shared=settings.shared_state())
    try:
        purged = purge(settings, store, utcnow())
    except BusUnavailable as exc:
        err_console.print(f"cannot purge: {exc.detail}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    finally:
        store.close()
    console.print(
        f"purged {purged.documents} signed answer(s) (their numbers stay on /verify) and "
        f"{purged.messages} asynchronous result(s)"
    )


@access_app.command("check")
def access_check(
    client: Annotated[str, typer.Argument(help="the asking member's code")],
    service: Annotated[str, typer.Argument(help="member/service/vN")],
    purpose: Annotated[str, typer.Option("--purpose", "-p", help="the purpose code asked for")],
    config: ConfigOption = Path("config/bus.yaml"),
    at: Annotated[
        datetime | None,
        typer.Option(help="decide at this time (ISO 8601, UTC if no offset) [default: now]"),
    ] = None,
) -> None:
    """Explain whether CLIENT may call SERVICE for a purpose, seeing which fields (exit 1: no)."""
    from bus.policy.access import AccessPolicy

    settings = load_or_exit(config, check_references=False)  # no key files needed here
    when = None if at is None else (at if at.tzinfo else at.replace(tzinfo=UTC))
    allowed, text = AccessPolicy(settings.access).explain(client, service, purpose, at=when)
    console.print(text, markup=False, highlight=False, soft_wrap=True)
    if not allowed:
        raise typer.Exit(1)


@app.command()
def status(
    url: Annotated[
        str | None,
        typer.Option(help="the node's base URL [default: http://<node.listen> of the config]"),
    ] = None,
    config: ConfigOption = Path("config/bus.yaml"),
    interval: Annotated[
        float, typer.Option(min=0, help="seconds between two scrapes, for rates (0: one)")
    ] = 1.0,
) -> None:
    """A node's live picture from its /metrics: services, rates, errors, queues, breakers."""
    import httpx

    from bus.cli.status import show

    if url is None:
        host, _, port = load_or_exit(config).node.listen.rpartition(":")
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"  # noqa: S104
    try:
        show(console, url, interval=interval)
    except httpx.HTTPError as exc:
        err_console.print(f"cannot read {url}/metrics: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None

