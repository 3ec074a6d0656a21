"""The ``static`` adapter (a plugin): answers from a table in the configuration, calls nothing.

For a stand-in agency while the real one is being connected, or a test. Installed through the
``bus.adapters`` entry point ``static = "bus_static_plugin:StaticAdapter"``.

Options (the keys under ``adapter:`` with ``kind: static``)::

    answers   {str: dict}   required, the response (shared schema, as JSON) per subject
                            (the request's ``subject()``, e.g. a PINFL)
    down      bool          default false; every call fails as if the agency were unreachable

Errors::

    subject not in ``answers``                 -> NoData
    ``down``                                   -> ProviderUnavailable (transient)
    an answer that does not fit the schema     -> ProviderInvalidAnswer
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError

from adapters import (
    AdapterContext,
    AdapterOptions,
    Deadline,
    NoData,
    ProviderInvalidAnswer,
    ProviderUnavailable,
)
from schemas import SharedRequest, SharedResponse

__all__ = ["StaticAdapter", "StaticOptions"]


class StaticOptions(AdapterOptions):
    answers: dict[str, dict[str, Any]]
    down: bool = False


class StaticAdapter:
    kind: ClassVar[str] = "static"
    options_model: ClassVar[type[AdapterOptions]] = StaticOptions

    def __init__(self, options: StaticOptions, context: AdapterContext) -> None:
        self.options = options
        self.context = context
        self.calls = 0

    def call(self, request: SharedRequest, deadline: Deadline) -> SharedResponse:
        self.calls += 1
        if self.options.down:
            raise ProviderUnavailable("static: configured as down")
        answer = self.options.answers.get(request.subject())
        if answer is None:
            raise NoData("static: no answer for this subject")
        try:
            return self.context.response_model.model_validate(answer)
        except ValidationError:
            raise ProviderInvalidAnswer(
                "static: the configured answer does not fit the schema"
            ) from None

    def close(self) -> None:
        pass
