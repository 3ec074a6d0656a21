"""What every adapter test module shares."""

from __future__ import annotations

import traceback
from collections.abc import Iterator

import pytest

from adapters import ProviderError
from demo.data import BIRTHS, PEOPLE, UNKNOWN_PINFL

DEMO_PINFLS = sorted({p.pinfl for p in PEOPLE} | {b.pinfl for b in BIRTHS} | {UNKNOWN_PINFL})


@pytest.fixture
def raised() -> Iterator[list[ProviderError]]:
    """Every adapter error a test saw; none may quote a demo PINFL, not even in its causes."""
    errors: list[ProviderError] = []
    yield errors
    for error in errors:
        text = "".join(traceback.format_exception(error))
        for pinfl in DEMO_PINFLS:
            assert pinfl not in text, text
