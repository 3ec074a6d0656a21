"""``run_bus.py inbox list | show | answer | reject``: the operator's desk in a terminal.

Works on the inbox files and the transport of the node named by ``--config``, whether the node
runs or not (an answer given while it is down waits in the asker's durable reply queue). Signing
needs the agency's key as the node has it (``BUS_NODE__KEY_PASSPHRASE``). ``show`` prints the
request with the person's identifiers: it is for the operator who must look them up, on the
terminal only; nothing of it is logged, and that it was read, by whom (``--operator``, else
the login name), is written to the audit log first.

``answer ID --file answer.json`` (or ``--set field=value`` …: a string field's value as typed,
any other's as JSON) is validated against the service's shared response schema: every field in
error is named, and nothing is sent until all are right. ``reject ID --code no-data`` answers
that the agency holds nothing about the person.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import typer
from rich.console import Console
from rich.table import Table

from bus.cli.common import load_or_exit
from bus.core.errors import BusError
from bus.inbox.desk import Closed, InboxDesk, field_kinds, time_left
from bus.node.wiring import Node
from bus.transport import open_transport

__all__ = ["register"]

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="YAML configuration file")]
OperatorOption = Annotated[
    str | None,
    typer.Option("--operator", help="who you are (recorded in the audit log); default: your login"),
]
# wide enough for the tables when the output is a pipe, as bus.cli.app's console
console = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


@contextlib.contextmanager
def _desk(config: Path) -> Iterator[InboxDesk]:

    settings = load_or_exit(config)
    transport = open_transport(
        settings.transport_url(),
        node=f"{settings.node.name}-inbox",
        durable_sync=settings.transport.durable_sync,
    )
    node = Node(settings, transport=transport)
    desk = node.open_inbox()
    try:
        if not desk.services:
            err.print(f"{config}: no service of this node is answered by an operator "
                      "(adapter kind manual)")
            raise typer.Exit(2)
        desk.resend_unsent()
        yield desk
    except BusError as exc:
        err.print(f"[red]{exc.code}[/red]: {exc.detail}", highlight=False)
        for problem in exc.errors or []:
            where = problem.get("loc")
            loc = ".".join(str(p) for p in where) if isinstance(where, list) else "?"
            err.print(f"  {loc}: {problem.get('msg')}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    finally:
        desk.close()
        node.stop()


def _parse_sets(pairs: list[str], kinds: dict[str, str]) -> dict[str, Any]:
    """``field=value`` pairs: a string field's value as typed, any other's as JSON (else text)."""
    data: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{pair!r} is not field=value", param_hint="--set")
        if kinds.get(name) == "string":
            data[name] = raw
            continue
        try:
            data[name] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data[name] = raw
    return data


def _answer_data(file: Path | None, sets: list[str], kinds: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if file is not None:
        try:
            loaded = orjson.loads(file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise typer.BadParameter(f"{file}: {exc}", param_hint="--file") from None
        if not isinstance(loaded, dict):
            raise typer.BadParameter(f"{file}: the answer must be a JSON object",
                                     param_hint="--file")
        data.update(loaded)
    data.update(_parse_sets(sets, kinds))
    if not data:
        raise typer.BadParameter("give the answer with --file or --set field=value")
    return data


def _report(what: str, task_id: str, closed: Closed) -> None:
    signed = closed.envelope
    if closed.delivered:
        console.print(f"{what} {task_id}: signed by {signed.provider}, delivered as {signed.id}",
                      highlight=False)
    else:
        console.print(f"{what} {task_id}: signed by {signed.provider} and kept; the transport "
                      "is not reachable now, so the node delivers it once it is (or the next "
                      "inbox command does)", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``inbox`` commands to ``app`` (``bus.cli.app``)."""
    inbox_app = typer.Typer(
        no_args_is_help=True,
        help="The operator inbox of manual services: list, show, answer, reject.",
    )
    app.add_typer(inbox_app, name="inbox")

    @inbox_app.command("list")
    def list_tasks(
        config: ConfigOption = Path("config/bus.yaml"),
        service: Annotated[str | None, typer.Option(help="only this service")] = None,
        closed: Annotated[bool, typer.Option("--closed", help="answered ones too")] = False,
    ) -> None:
        """Tasks waiting for an operator, oldest first: id, service, who asks, time left."""
        states = ("open", "sending", "answered", "rejected", "expired") if closed else ("open",)
        with _desk(config) as desk:
            tasks = desk.tasks(states=states, service=service)
            now = desk.seal.clock()
        table = Table(title=f"{len(tasks)} task(s)", title_justify="left")
        for column in ("id", "service", "client", "purpose", "filed", "state", "time left"):
            table.add_column(column, no_wrap=column in ("id", "filed"))
        for task in tasks:
            filed = dt.datetime.fromtimestamp(task.filed_at, dt.UTC).isoformat()[:19]
            left = time_left(task, now) if task.state == "open" else "-"
            table.add_row(task.id, task.service, task.client, task.purpose, filed, task.state,
                          left)
        console.print(table)

    @inbox_app.command("show")
    def show(
        task_id: Annotated[str, typer.Argument(help="the task id (from inbox list)")],
        config: ConfigOption = Path("config/bus.yaml"),
        operator: OperatorOption = None,
    ) -> None:
        """One task: the request, who asks and why, the answer's fields, the instructions.
        Reading it is recorded in the audit log."""
        with _desk(config) as desk:
            task = desk.read(task_id, operator=operator or getpass.getuser())
            route = desk.route(task.service)
            instructions = desk.instructions(task.service)
            left = time_left(task, desk.seal.clock())
        console.print(f"[bold]{task.service}[/bold]  task {task.id}  ({task.state})")
        console.print(f"asked by {task.client} for {task.purpose!r}, user {task.user!r}; "
                      f"answer within {left}", highlight=False)
        if instructions:
            console.print(f"instructions: {instructions}", highlight=False)
        console.print("request:")
        console.print_json(orjson.dumps(task.request).decode())
        fields = route.response_model.model_json_schema().get("properties", {})
        required = set(route.response_model.model_json_schema().get("required", []))
        console.print(f"answer ({route.response_model.__name__}):")
        for name, spec in fields.items():
            kind = spec.get("type") or spec.get("format") or "see schema"
            mark = "required" if name in required else "optional"
            console.print(f"  {name}: {kind}, {mark}. {spec.get('description', '')}",
                          highlight=False)

    @inbox_app.command("answer")
    def answer(
        task_id: Annotated[str, typer.Argument(help="the task id (from inbox list)")],
        config: ConfigOption = Path("config/bus.yaml"),
        file: Annotated[Path | None, typer.Option("--file", help="the answer as JSON")] = None,
        sets: Annotated[list[str] | None, typer.Option(
            "--set", help="field=value (repeat); text for a string field, else JSON")] = None,
        operator: OperatorOption = None,
    ) -> None:
        """Answer a task: validated, signed as the agency and delivered to the asker."""
        with _desk(config) as desk:  # an invalid answer: every field in error, exit 1
            kinds = field_kinds(desk.route(desk.task(task_id).service).response_model)
            data = _answer_data(file, sets or [], kinds)
            closed = desk.answer(task_id, data, operator=operator or getpass.getuser())
        _report("[green]answered[/green]", task_id, closed)

    @inbox_app.command("reject")
    def reject(
        task_id: Annotated[str, typer.Argument(help="the task id (from inbox list)")],
        config: ConfigOption = Path("config/bus.yaml"),
        code: Annotated[Literal["no-data", "provider-rejected"], typer.Option(
            help="no-data: nothing about this person; provider-rejected: cannot be served"
        )] = "no-data",
        detail: Annotated[str, typer.Option(help="told to the asker")] = "",
        operator: OperatorOption = None,
    ) -> None:
        """Answer a task with a signed refusal."""
        with _desk(config) as desk:
            closed = desk.reject(
                task_id, operator=operator or getpass.getuser(), code=code, detail=detail
            )
        _report(f"[yellow]rejected[/yellow] ({code})", task_id, closed)
