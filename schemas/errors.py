"""The error vocabulary every layer shares: a base with a stable ``code`` and a ``transient`` flag.

The bus's whole tree is drawn in ``bus.core.errors``; its root and the provider's errors live
here, on the lowest floor, because adapters raise them (``adapters`` imports ``schemas`` only); the
signing layer's errors share the base, ``CodedError``, with codes of this vocabulary
(``signing.errors``). ``code`` is used verbatim as the
suffix of the RFC 9457 ``type`` URI, as the SOAP fault code, as the ``code`` of an error
envelope's payload and as a metric label; ``transient`` says whether a retry may help, declared
once per class (the retry policy and the provider's redeliveries read it).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "PROBLEM_TYPE_BASE",
    "BusError",
    "CodedError",
    "NoData",
    "ProviderError",
    "ProviderInvalidAnswer",
    "ProviderRejected",
    "ProviderTimeout",
    "ProviderUnavailable",
]

PROBLEM_TYPE_BASE = "https://bus.example.gov/problems/"


class CodedError(Exception):
    """Base of every error of ours, in every layer: a stable ``code`` and ``transient``."""

    code: ClassVar[str] = "error"
    transient: ClassVar[bool] = False


class BusError(CodedError):
    """Base of every error the bus raises on purpose."""

    code: ClassVar[str] = "bus-error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Bus error"
    transient: ClassVar[bool] = False

    def __init__(
        self,
        detail: str = "",
        *,
        message_id: str | None = None,
        client: str | None = None,
        service: str | None = None,
        errors: list[dict[str, object]] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.message_id = message_id
        self.client = client
        self.service = service
        self.errors = errors

    def with_context(
        self, *, message_id: str | None = None, client: str | None = None,
        service: str | None = None,
    ) -> None:
        """Name the message, client and service where this error does not name them yet (an
        adapter raises without them; the provider worker adds them)."""
        self.message_id = self.message_id or message_id
        self.client = self.client or client
        self.service = self.service or service

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_BASE + self.code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r}, service={self.service!r})"

    def envelope_payload(self) -> dict[str, str]:
        """The payload of the signed error envelope that answers with this error."""
        return {"code": self.code, "title": self.title, "detail": self.detail}


class ProviderError(BusError):
    code = "provider-error"
    status = 502
    title = "Provider error"


class ProviderUnavailable(ProviderError):
    code = "provider-unavailable"
    status = 502
    title = "Provider unavailable"
    transient = True


class ProviderTimeout(ProviderError):
    code = "provider-timeout"
    status = 504
    title = "Provider did not answer in time"
    transient = True


class ProviderRejected(ProviderError):
    code = "provider-rejected"
    status = 502
    title = "Provider rejected the request"


class ProviderInvalidAnswer(ProviderError):
    code = "provider-invalid-answer"
    status = 502
    title = "Provider answered something that does not match the shared schema"


class NoData(ProviderError):
    code = "no-data"
    status = 404
    title = "The provider holds no data about this subject"
