"""The benchmark's workload: one request, one answer, and envelopes of the bus's exact shape.

Every cell of the benchmark exchanges the same thing: the portal asks ``echo-agency/echo/v1``
(request ``ResidenceRegistrationRequest``, answer ``ResidenceRegistration``) about one fixed,
fictional PINFL, and the provider answers with a fixed registration built from the request.
The raw floors build envelopes with the same fields and sizes as the bus's (``request_envelope``,
``reply_envelope``) and do the same signing work on them, so that a floor and a bus figure
differ only by what the bus adds.

This module imports only the standard library and ``signing``, so the trivial adapter (loaded by
the node through an entry point) can share ``echo_answer`` without pulling in the harness.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

__all__ = [
    "CLIENT",
    "PINFL",
    "PROVIDER",
    "PURPOSE",
    "SERVICE",
    "USER",
    "echo_answer",
    "iso",
    "reply_envelope",
    "request_body",
    "request_envelope",
]

CLIENT = "portal"
PROVIDER = "echo-agency"
SERVICE = f"{PROVIDER}/echo/v1"
PURPOSE = "benchmark"
USER = "bench-officer-1"
PINFL = "31505862740013"  # fictional, well formed (see demo/data.py)
TIMEOUT_S = 10.0


def request_body(pinfl: str = PINFL) -> dict[str, Any]:
    """The shared-schema request the portal sends (``ResidenceRegistrationRequest``)."""
    return {"pinfl": pinfl}


def echo_answer(pinfl: str) -> dict[str, Any]:
    """The fixed answer about ``pinfl`` (a valid ``ResidenceRegistration`` in JSON form)."""
    return {
        "pinfl": pinfl,
        "full_name": "Benchmark Person",
        "address": {
            "region": "Toshkent shahri",
            "district": "Yunusobod tumani",
            "street": "Amir Temur ko'chasi",
            "house": "108",
            "apartment": "12",
        },
        "kind": "permanent",
        "registered_on": "2019-03-14",
        "valid_until": None,
    }


def iso(moment: dt.datetime) -> str:
    """A UTC timestamp as the bus's envelopes carry it (pydantic's JSON form)."""
    return moment.isoformat().replace("+00:00", "Z")


def request_envelope(body: dict[str, Any], *, now: dt.datetime | None = None) -> dict[str, Any]:
    """A request envelope (unsigned) with the bus's fields, for the raw floors."""
    now = now or dt.datetime.now(dt.UTC)
    message_id = str(uuid.uuid4())
    return {
        "id": message_id,
        "correlation": message_id,
        "client": CLIENT,
        "service": SERVICE,
        "user": USER,
        "purpose": PURPOSE,
        "subject": body["pinfl"],
        "issued_at": iso(now),
        "expires_at": iso(now + dt.timedelta(seconds=TIMEOUT_S)),
        "kind": "request",
        "payload": body,
    }


def reply_envelope(request: dict[str, Any], *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The (unsigned) response envelope answering ``request``, for the raw floors."""
    now = now or dt.datetime.now(dt.UTC)
    return {
        **request,
        "id": str(uuid.uuid4()),
        "correlation": request["id"],
        "issued_at": iso(now),
        "kind": "response",
        "payload": echo_answer(request["payload"]["pinfl"]),
    }
