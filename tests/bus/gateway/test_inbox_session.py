"""Sessions of officials signed in at /inbox: they last their lifetime, end at sign-out, keep
no usable id in memory, and send the official back only to a page of the inbox."""

from __future__ import annotations

from bus.gateway.inbox_session import (
    FAILURE_WINDOW_S,
    MAX_FAILURES,
    Sessions,
    safe_next,
    sign_in_form,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_lasts_its_lifetime_then_asks_again() -> None:
    clock = Clock()
    sessions = Sessions(clock, lifetime_s=60)
    session = sessions.open("archivist")
    assert sessions.operator(session) == "archivist"
    assert sessions.operator(session + "x") is None and sessions.operator("") is None
    clock.now += 61
    assert sessions.operator(session) is None


def test_signing_out_ends_only_that_session() -> None:
    sessions = Sessions(Clock())
    first, second = sessions.open("archivist"), sessions.open("archivist")
    sessions.close(first)
    assert sessions.operator(first) is None and sessions.operator(second) == "archivist"
    sessions.close(first)  # twice is fine


def test_the_node_keeps_no_session_id_that_could_be_replayed() -> None:
    sessions = Sessions(Clock())
    session = sessions.open("archivist")
    assert session not in repr(sessions.__dict__)


def test_after_signing_in_only_a_page_of_the_inbox() -> None:
    assert safe_next("/inbox/abc") == "/inbox/abc"
    for elsewhere in ("https://evil.example/", "//evil.example/inbox", "/docs", "/inbox\\\\x",
                      "/inbox//evil.example"):
        assert safe_next(elsewhere) == "/inbox"
    form = sign_in_form("https://evil.example/", error="<b>x</b>", name="'><script>")
    assert "evil.example" not in form and "<script>" not in form and "<b>x" not in form


def test_guessing_a_password_is_slowed_per_name_and_address() -> None:
    clock = Clock()
    sessions = Sessions(clock)
    for _ in range(MAX_FAILURES):
        assert sessions.refused("archivist", "10.0.0.5") == 0
        sessions.failed("archivist", "10.0.0.5")
    assert sessions.refused("archivist", "10.0.0.5") == FAILURE_WINDOW_S
    assert sessions.refused("archivist", "10.0.0.6") == 0  # another machine
    assert sessions.refused("b.usmonov", "10.0.0.5") == 0  # another name
    clock.now += FAILURE_WINDOW_S + 1
    assert sessions.refused("archivist", "10.0.0.5") == 0
