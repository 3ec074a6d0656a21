"""canonical_json: the orjson path writes exactly rfc8785's bytes, and refuses what it refuses."""

from __future__ import annotations

import enum
import random
from typing import Any

import pytest
import rfc8785

import signing.canonical as canonical
from signing import canonical_json

_ALPHABET = (
    [chr(i) for i in range(0x20)]  # every control character
    + list("\"\\/\x7f azAZ09-_.:é€ß\u2028\u2029\ufeff\ud7ff\ue000\uffff")
    + ["😀", "\U0010ffff"]  # beyond the BMP: surrogate pairs in UTF-16
)
_EDGE_INTS = [0, 1, -1, 2**31, -(2**31), 2**53 - 1, -(2**53 - 1), 2**53, -(2**53), 2**64]


def _text(rng: random.Random, *, ascii_only: bool = False) -> str:
    pool = [c for c in _ALPHABET if c.isascii()] if ascii_only else _ALPHABET
    return "".join(rng.choice(pool) for _ in range(rng.randrange(0, 12)))


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.randrange(10 if depth < 4 else 6)
    if roll == 0:
        return None
    if roll == 1:
        return rng.choice([True, False])
    if roll == 2:
        return rng.choice([*_EDGE_INTS, rng.randrange(-(10**6), 10**6)])
    if roll == 3:
        return rng.choice([0.0, 1.0, -2.5, 1e21, 1e-7, 123.456, rng.random()])
    if roll in (4, 5):
        return _text(rng)
    if roll in (6, 7):
        return {
            _text(rng, ascii_only=rng.random() < 0.8): _value(rng, depth + 1)
            for _ in range(rng.randrange(0, 6))
        }
    items = [_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    return items if roll == 8 else tuple(items)


def _float(rng: random.Random) -> float:
    """Floats in and around the fast path's range, integral ones and odd ones too."""
    roll = rng.randrange(4)
    if roll == 0:
        return rng.random() * 10 ** rng.uniform(-8, 23) * rng.choice([1, -1])
    if roll == 1:
        return round(rng.uniform(0, 10 ** rng.randrange(0, 17)), rng.randrange(0, 8))
    if roll == 2:
        return float(rng.randrange(-(10**17), 10**17))
    return rng.choice([0.0, -0.0, 1e-4, 1e15, 1e21, 5e-324, 1.7976931348623157e308])


def _outcome(fn: Any, value: Any) -> bytes | type[BaseException]:
    try:
        result: bytes = fn(value)
    except ValueError as exc:  # rfc8785's refusals are ValueErrors
        return type(exc)
    return result


def test_generated_values_match_rfc8785_byte_for_byte() -> None:
    rng = random.Random(8785)
    for _ in range(3000):
        value = _value(rng)
        assert _outcome(canonical_json, value) == _outcome(rfc8785.dumps, value), value


def test_generated_floats_match_rfc8785_byte_for_byte() -> None:
    rng = random.Random(754)
    for _ in range(20_000):
        value = _float(rng)
        assert canonical_json(value) == rfc8785.dumps(value), repr(value)


@pytest.mark.parametrize(
    "value",
    [
        {"b": [1.0, 1e21, "é"], "a": None},  # floats: JCS number form
        {"area": 123.45, "share": 0.5, "tiny": 0.0001, "big": 999999999999999.9},
        [float("inf")],  # refused by both
        [float("nan")],
        {"\ue000": 1, "😀": 2},  # UTF-16 order differs from code point order here
        {"é": 1, "e": 2, "z": 3},
        {"a": "\ud800"},  # lone surrogate: refused by both
        {"n": 2**53},  # beyond the JCS integer domain: refused
        {"n": -(2**53)},
        {1: "not a string key"},
        {"t": (1, "x", [None, True])},
        "".join(_ALPHABET),
        [],
        {},
    ],
)
def test_edge_cases_match_rfc8785(value: Any) -> None:
    assert _outcome(canonical_json, value) == _outcome(rfc8785.dumps, value)


def test_subclasses_take_the_reference_path() -> None:
    class Colour(enum.StrEnum):
        red = "red"

    class Size(enum.IntEnum):
        big = 3

    value = {"c": Colour.red, "s": Size.big, "flag": True}
    assert canonical_json(value) == rfc8785.dumps(value) == b'{"c":"red","flag":true,"s":3}'


def test_an_envelope_shaped_value_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(obj: Any) -> bytes:
        raise AssertionError("the reference implementation was used")

    monkeypatch.setattr(canonical.rfc8785, "dumps", refuse)
    envelope = {
        "id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "client": "portal",
        "issued_at": "2026-11-23T14:00:00.123456Z",
        "subject": None,
        "payload": {"pinfl": "31505862740013", "address": {"house": "108"}, "rooms": 3},
        "kind": "response",
    }
    assert canonical_json(envelope).startswith(b'{"client":"portal","id":')
