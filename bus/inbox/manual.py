"""Adapter kind ``manual``: the operator fallback route, for an agency with no database or API.

Talks to: a person. Each request is filed in the agency's operator inbox
(``bus.inbox.store.OperatorInbox``: a SQLite file, mode 0600, or a PostgreSQL database
shared by several nodes) instead of being answered at once; an
official of the agency looks it up (in a paper archive, say) and answers it with
``run_bus.py inbox answer`` or the node's ``/inbox`` page (``bus.inbox.desk``), which validate the
answer against the service's shared response schema, sign it with the agency's key and deliver
it. A service on this kind is asynchronous: give it a ``timeout_s`` of days and ask it with
``?mode=async`` (``bus.gateway.asynchronous``).

Options:

``inbox`` (str, optional)
    The inbox: a file, default ``inbox.db`` in the node's data folder (beside
    ``documents.db``), or a ``postgresql://`` URL — needed when several nodes host the service,
    so that operators see every task wherever it was filed. Every manual service may share
    one inbox; tasks carry their service.
``instructions`` (str, default ``""``)
    What the operator is shown with each task of this service (where to look, what to fill in).

Error mapping: nothing is called, so there is no provider error. A task filed twice (the same
request delivered again) is kept once. A task is answered or rejected once: a second attempt,
or one after the request expired, raises ``TaskClosed``. Filing that cannot be written raises
``ProviderUnavailable`` (transient: the request is delivered again). The states of a task are
in ``bus.inbox.store``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

from pydantic import Field

from adapters.base import AdapterContext, AdapterOptions, Deadline, ProviderUnavailable
from bus.inbox.store import InboxUnavailable, OperatorInbox, Ticket, is_database_url
from schemas import SharedRequest, SharedResponse

__all__ = ["DeferringAdapter", "ManualAdapter", "ManualOptions", "inbox_location"]


class ManualOptions(AdapterOptions):
    inbox: str | None = Field(
        default=None,
        description="the inbox: a file (default inbox.db in the node's data folder, shared by "
        "the node's manual services) or a postgresql:// URL shared by several nodes",
    )
    instructions: str = Field(
        default="", max_length=2000, description="shown to the operator with each task"
    )


def inbox_location(options: ManualOptions, data_dir: Path | None) -> str:
    """Where a manual service's inbox is: its ``inbox`` option (a file or a database URL),
    else ``inbox.db`` in the node's data folder."""
    if options.inbox is None:
        return str((data_dir or Path(".")) / "inbox.db")
    return options.inbox if is_database_url(options.inbox) else str(Path(options.inbox))


@runtime_checkable
class DeferringAdapter(Protocol):
    """An adapter that answers later: ``file`` keeps the request; the answer comes another way."""

    def file(self, request: SharedRequest, ticket: Ticket) -> None: ...


class ManualAdapter:
    kind: ClassVar[str] = "manual"
    options_model: ClassVar[type[AdapterOptions]] = ManualOptions

    def __init__(self, options: ManualOptions, context: AdapterContext) -> None:
        self.options = options
        self.context = context
        self.inbox = OperatorInbox(inbox_location(options, context.data_dir))

    def file(self, request: SharedRequest, ticket: Ticket) -> None:
        try:
            self.inbox.file(ticket, request.model_dump(mode="json"))
        except InboxUnavailable as exc:
            raise ProviderUnavailable(f"the operator inbox cannot be written: {exc}") from exc

    def call(self, request: SharedRequest, deadline: Deadline) -> SharedResponse:
        raise ProviderUnavailable(
            f"{self.context.service} is answered by an operator: its requests are filed, "
            "not called"
        )

    def close(self) -> None:
        self.inbox.close()
