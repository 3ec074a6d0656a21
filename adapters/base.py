"""The adapter protocol, adapter errors and the deadline an adapter works within.

An adapter turns a shared-schema request into a call to one agency system and that system's
answer back into the shared-schema response. Adapters import only ``schemas``; they report
failures with the bus's own provider errors (``schemas.errors``: ``ProviderUnavailable``,
``ProviderTimeout``, ``ProviderRejected``, ``ProviderInvalidAnswer``, ``NoData``, all
``ProviderError``), each with its ``code`` and its ``transient`` flag, so the bus needs no
translation; the provider worker only adds the message's id, client and service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
]


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
