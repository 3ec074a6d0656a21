"""The adapter protocol, adapter errors and the deadline an adapter works within.

An adapter turns a shared-schema request into a call to one agency system and that system's
answer back into the shared-schema response. Adapters import only ``schemas``; they report
failures with the bus's own provider errors (``schemas.errors``: ``ProviderUnavailable``,
``ProviderTimeout``, ``ProviderRejected``, ``ProviderInvalidAnswer``, ``NoData``, all
``ProviderError``), each with its ``code`` and its ``transient`` flag, so the bus needs no
translation; the provider worker only adds the message's id, client and service.

The bus id of the request being answered (the envelope id, a UUID) is available to an adapter
while the bus calls it: ``message_id()`` (set by the provider with ``answering(id)``, per thread
and task, so the ``call(request, deadline)`` protocol stays as it is for plugins). The same id
comes again when the transport redelivers a request whose answer was not recorded (a worker
killed during the call): the ``rest``, ``soap`` and ``sql`` kinds pass it to the agency so the
agency can de-duplicate.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from schemas import SharedRequest, SharedResponse
from schemas.errors import (
    NoData,
    ProviderError,
    ProviderInvalidAnswer,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)

__all__ = [
    "Adapter",
    "AdapterConfigError",
    "AdapterContext",
    "AdapterOptions",
    "Deadline",
    "NoData",
    "ProviderError",
    "ProviderInvalidAnswer",
    "ProviderRejected",
    "ProviderTimeout",
    "ProviderUnavailable",
    "answering",
    "message_id",
]

_MESSAGE_ID: ContextVar[str | None] = ContextVar("bus_message_id", default=None)
_UUID = re.compile(r"^[0-9a-f-]{36}$")


def message_id() -> str | None:
    """The bus message id of the request the current adapter call answers (None outside one).
    Always a UUID's 36 characters of hex digits and dashes: safe in a header or a comment."""
    return _MESSAGE_ID.get()


@contextmanager
def answering(message_id: str) -> Iterator[None]:
    """Adapter calls inside this block answer the request ``message_id`` (``message_id()``)."""
    if not _UUID.match(message_id):
        raise ValueError("a bus message id is a UUID")
    token = _MESSAGE_ID.set(message_id)
    try:
        yield
    finally:
        _MESSAGE_ID.reset(token)


class AdapterConfigError(Exception):
    """An adapter kind is unknown or its options are wrong."""


class AdapterOptions(BaseModel):
    """Base of every adapter kind's options (the config keys under ``adapter:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Deadline:
    """An absolute deadline on a monotonic clock; ``remaining()`` is never negative."""

    at: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        return self.clock() >= self.at


@dataclass(frozen=True)
class AdapterContext:
    """What the bus gives an adapter when it builds one."""

    service: str
    request_model: type[SharedRequest]
    response_model: type[SharedResponse]
    extra: dict[str, Any] | None = None
    data_dir: Path | None = None  # the node's folder for files it keeps (an inbox, say)


class Adapter(Protocol):
    """``call`` answers one request within ``deadline`` or raises an ``ProviderError``.

    An adapter may also offer ``readiness_probe() -> Callable[[Deadline], None] | None``: the
    check that its provider is reachable when one is configured (``None`` otherwise); the
    check raises an ``ProviderError`` when it is not. The node's ``/health/ready`` runs it.
    """

    kind: ClassVar[str]
    options_model: ClassVar[type[AdapterOptions]]

    def call(self, request: SharedRequest, deadline: Deadline) -> SharedResponse: ...

    def close(self) -> None: ...
