"""RFC 8785 (JCS) canonical JSON, the bytes every JWS of the bus is made over.

``rfc8785.dumps`` is the reference; it is pure Python and costs ~30-60 µs for one envelope, and
an exchange canonicalises five objects (request and answer, each signed once and verified once,
and the audit entry).
For the values envelopes hold, ``orjson`` with sorted keys writes exactly the same bytes in
~1 µs, so ``canonical_json`` takes that path when the value is *plain*:

* ``str`` (exact type), ``bool``, ``None``; ``int`` within ±(2**53 - 1), the integers JCS can
  represent (beyond it ``rfc8785`` refuses, and so must we);
* ``float`` that is not integral with 1e-4 <= |x| < 1e15: both write its shortest round-trip
  digits in plain decimal notation there (JCS writes ``1.0`` as ``1``, orjson as ``1.0``, and
  the two switch to exponents at different places outside that range);
* ``dict`` whose keys are ASCII ``str`` (JCS sorts keys by UTF-16 code units, orjson by code
  points: the orders agree for ASCII), ``list`` and ``tuple`` of plain values.

Both escape the same characters the same way (``"``, ``\\``, ``\\b \\t \\n \\f \\r``, other
controls as lowercase ``\\u00xx``) and write everything else as UTF-8. Anything else — another
float, a non-ASCII key, a subclass such as an enum, a lone surrogate that orjson will not
encode — goes to ``rfc8785``, which gives the canonical form or its refusal (``ValueError``) as
before. ``tests/signing/test_canonical.py`` checks the two paths byte for byte on generated and
edge-case values.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

__all__ = ["canonical_json"]

_SAFE_INT = 2**53 - 1
_SORTED = orjson.OPT_SORT_KEYS


def _plain(value: Any) -> bool:
    """Whether orjson's sorted form of ``value`` is its RFC 8785 form (see the docstring)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -_SAFE_INT <= value <= _SAFE_INT
    if kind is float:
        return 1e-4 <= abs(value) < 1e15 and not value.is_integer()
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii() or not _plain(item):
                return False
        return True
    if kind is list or kind is tuple:
        return all(map(_plain, value))
    return False


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JCS) canonical form of a JSON-compatible object."""
    if _plain(obj):
        try:
            return orjson.dumps(obj, option=_SORTED)
        except orjson.JSONEncodeError:  # e.g. a lone surrogate: rfc8785 says why
            pass
    return rfc8785.dumps(obj)
