"""Kinds registered by the program running the bus (``adapters.register_kind``)."""

from __future__ import annotations

from typing import ClassVar

import pytest

from adapters import AdapterConfigError, adapter_kind, available_kinds, register_kind
from bench.trivial_adapter import EchoAdapter


def test_a_registered_kind_is_found_by_name_and_listed() -> None:
    register_kind(EchoAdapter)
    register_kind(EchoAdapter)  # again: nothing changes
    found = adapter_kind("bench-echo")
    assert found.cls is EchoAdapter
    assert found.source == "registered by bench.trivial_adapter"
    assert available_kinds()["bench-echo"].cls is EchoAdapter


def test_a_taken_name_is_refused() -> None:
    register_kind(EchoAdapter)

    class Impostor(EchoAdapter):
        kind: ClassVar[str] = "bench-echo"

    class Rest(EchoAdapter):
        kind: ClassVar[str] = "rest"

    for cls in (Impostor, Rest):
        with pytest.raises(AdapterConfigError, match="already taken"):
            register_kind(cls)
    assert adapter_kind("bench-echo").cls is EchoAdapter
    assert adapter_kind("rest").cls is not Rest
