"""What an operator sees of a dead letter: the envelope's header, never its payload.

A dead letter's body is usually a signed envelope carrying personal data; operators get the
header fields (with the subject masked), the reason, the queue and the attempts. A body that is
not an envelope is described by its size only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bus.core.envelope import Envelope
from bus.core.errors import MalformedRequest
from bus.transport import DeadLetter
from schemas import mask_identifier

__all__ = ["describe"]


def describe(letter: DeadLetter) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": letter.id,
        "queue": letter.queue,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "failed_at": dt.datetime.fromtimestamp(letter.failed_at, dt.UTC).isoformat(),
        "message_id": letter.message.message_id,
        "bytes": len(letter.message.body),
    }
    try:
        envelope = Envelope.from_json(letter.message.body)
    except MalformedRequest:
        out["envelope"] = None
        return out
    header = envelope.header_dict()
    header["subject"] = mask_identifier(envelope.subject)
    out["envelope"] = header
    return out
