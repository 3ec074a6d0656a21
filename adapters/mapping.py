"""What adapter kinds share about mappings: loading them, and judging what they return.

A mapping turns an agency's native answer into the shared response model. ``load_module``
loads a mapping module with ``to_request``/``to_response`` (rest, soap); ``load_function`` one
mapping function (sql). ``mapped_answer`` validates a mapping's result against the response
model and turns every way it can fail into ``ProviderInvalidAnswer``, naming where but never quoting
values (they may be personal data).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from adapters.base import AdapterConfigError, ProviderError, ProviderInvalidAnswer
from schemas import SharedResponse

__all__ = ["MAPPING_ERRORS", "load_function", "load_module", "mapped_answer"]

MAPPING_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError)


def load_module(dotted: str, service: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``(to_request, to_response)`` of the mapping module ``dotted``."""
    try:
        module = importlib.import_module(dotted)
    except ImportError as exc:
        raise AdapterConfigError(f"{service}: cannot import mapping {dotted!r}: {exc}") from exc
    to_request = getattr(module, "to_request", None)
    to_response = getattr(module, "to_response", None)
    if not (callable(to_request) and callable(to_response)):
        raise AdapterConfigError(
            f"{service}: mapping module {dotted!r} must define to_request() and to_response()"
        )
    return to_request, to_response


def load_function(dotted: str, service: str) -> Callable[..., Any]:
    """The mapping function ``module.function``."""
    module_name, _, attr = dotted.rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise AdapterConfigError(f"{service}: cannot load mapping {dotted!r}: {exc}") from exc
    if not callable(function):
        raise AdapterConfigError(f"{service}: mapping {dotted!r} is not a function")
    return function


def mapped_answer(
    mapping: Callable[[], Any], model: type[SharedResponse], what: str
) -> SharedResponse:
    """Call ``mapping`` and return its answer as ``model``; any failure is ``ProviderInvalidAnswer``
    (an ``ProviderError`` the mapping raises on purpose, e.g. ``NoData``, passes through)."""
    try:
        answer = mapping()
        return answer if isinstance(answer, model) else model.model_validate(answer)
    except ProviderError:
        raise
    except ValidationError as exc:
        where = sorted({".".join(map(str, e["loc"])) or "(root)" for e in exc.errors()})
        raise ProviderInvalidAnswer(
            f"{what}: the answer does not fit {exc.title} ({exc.error_count()} errors at "
            f"{', '.join(where)})"
        ) from None
    except MAPPING_ERRORS as exc:
        raise ProviderInvalidAnswer(
            f"{what}: the answer cannot be mapped ({type(exc).__name__})"
        ) from None
