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
``dedupe_on`` (str, optional)
    A field of the request model that identifies an application (``application_id``): the
    agency files each application once. A request whose value matches a task of this service
    already filed (and not expired) is not filed again; it is refused as ``provider-rejected``
    naming the request it repeats, whose answer the client polls.

Error mapping: nothing is called, so there is no provider error. A task filed twice (the same
request delivered again) is kept once; a second application with the same ``dedupe_on`` value
is ``ProviderRejected``. A task is answered or rejected once: a second attempt,
or one after the request expired, raises ``TaskClosed``. Filing that cannot be written raises
``ProviderUnavailable`` (transient: the request is delivered again). The states of a task are
in ``bus.inbox.store``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

from pydantic import Field

from adapters.base import (
    AdapterConfigError,
    AdapterContext,
    AdapterOptions,
    Deadline,
    ProviderRejected,
    ProviderUnavailable,
)
from bus.inbox.store import (
    DuplicateTask,
    InboxUnavailable,
    OperatorInbox,
    Ticket,
    is_database_url,
)
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
    dedupe_on: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="a request field identifying an application, filed once",
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
        key = options.dedupe_on
        if key is not None and key not in context.request_model.model_fields:
            raise AdapterConfigError(
                f"{context.service}: dedupe_on {key!r} is not a field of "
                f"{context.request_model.__name__}"
            )
        self.inbox = OperatorInbox(inbox_location(options, context.data_dir))

    def file(self, request: SharedRequest, ticket: Ticket) -> None:
        data = request.model_dump(mode="json")
        key = None if self.options.dedupe_on is None else str(data[self.options.dedupe_on])
        try:
            self.inbox.file(ticket, data, key=key)
        except DuplicateTask as exc:
            raise ProviderRejected(
                f"{self.context.service}: this {self.options.dedupe_on} was filed already, as "
                f"request {exc.task_id}; its answer comes there"
            ) from None
        except InboxUnavailable as exc:
            raise ProviderUnavailable(f"the operator inbox cannot be written: {exc}") from exc

    def call(self, request: SharedRequest, deadline: Deadline) -> SharedResponse:
        raise ProviderUnavailable(
            f"{self.context.service} is answered by an operator: its requests are filed, "
            "not called"
        )

    def close(self) -> None:
        self.inbox.close()
