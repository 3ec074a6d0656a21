"""The pending replies of a transport: every deadline it raises names the request."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from bus.core.errors import DeadlineExceeded
from bus.transport import Message
from bus.transport.replies import PendingReplies


def test_the_sweeps_deadline_carries_the_requests_message_id() -> None:
    now = [100.0]
    pending = PendingReplies(clock=lambda: now[0])
    future: Future[Message] = Future()
    pending.add("3f1c2a9e-0000-4000-8000-000000000001", future, expires_at=105.0)
    pending.expire()
    assert not future.done()
    now[0] = 106.0
    pending.expire()
    with pytest.raises(DeadlineExceeded) as info:
        future.result(timeout=0)
    assert info.value.message_id == "3f1c2a9e-0000-4000-8000-000000000001"


def test_a_late_handed_over_reply_names_its_request() -> None:
    now = [100.0]
    pending = PendingReplies(clock=lambda: now[0])
    future: Future[Message] = Future()
    pending.add("req-1", future, expires_at=105.0)
    now[0] = 110.0
    late = Message(b"{}", message_id="rep-1", correlation_id="req-1", expires_at=105.0)
    assert pending.hand_over(late)
    with pytest.raises(DeadlineExceeded) as info:
        future.result(timeout=0)
    assert info.value.message_id == "req-1"
