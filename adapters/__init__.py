"""Adapters: turn shared-schema requests into calls to agency systems, and answers back.

Kinds: ``rest`` (HTTP/JSON via httpx), ``soap`` (an operation of a WSDL, via zeep), ``sql``
(read-only query via SQLAlchemy), ``manual`` (filed in an operator inbox, answered by a
person: ``bus.inbox.manual``); more arrive as plugins through the ``bus.adapters``
entry-point group, or are registered by the program running the bus (``register_kind``).
"""

from adapters.base import (
    Adapter,
    AdapterConfigError,
    AdapterContext,
    AdapterOptions,
    Deadline,
    NoData,
    ProviderError,
    ProviderInvalidAnswer,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    answering,
    message_id,
)
from adapters.registry import (
    AdapterKind,
    adapter_kind,
    available_kinds,
    build_adapter,
    register_kind,
)

__all__ = [
    "Adapter",
    "AdapterConfigError",
    "AdapterContext",
    "AdapterKind",
    "AdapterOptions",
    "Deadline",
    "NoData",
    "ProviderError",
    "ProviderInvalidAnswer",
    "ProviderRejected",
    "ProviderTimeout",
    "ProviderUnavailable",
    "adapter_kind",
    "answering",
    "available_kinds",
    "build_adapter",
    "message_id",
    "register_kind",
]
