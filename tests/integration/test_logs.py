"""The demo's logs are JSON lines with the exchange's context and no personal identifier: after a
demo run (at DEBUG, so every line the bus can write is written) neither its ``node.log`` nor
anything printed names a PINFL of the demo's people."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from demo.data import BIRTHS, PEOPLE, UNKNOWN_PINFL
from demo.records import BOGISHAMOL
from demo.scenario import run_demo

# the identifiers of the demo's subjects: people (PINFL) and the legal-person debtor (STIR)
PINFLS = sorted({p.pinfl for p in PEOPLE} | {b.pinfl for b in BIRTHS} | {UNKNOWN_PINFL,
                                                                          BOGISHAMOL})


@pytest.fixture
def bus_logger() -> Iterator[None]:
    """Give the loggers back as they were (the demo points them at its own file)."""
    loggers = [logging.getLogger(name) for name in ("bus", "uvicorn")]
    saved = [(list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    try:
        yield
    finally:
        for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            for handler in logger.handlers:
                if handler not in handlers:
                    handler.close()
            logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


@pytest.fixture
def demo_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    bus_logger: None,
) -> tuple[list[dict[str, object]], str]:
    """Run the demo with ``log_level`` DEBUG (from the environment, as config would set it);
    return its log lines, decoded, and everything it printed or wrote to stdout/stderr."""
    monkeypatch.setenv("BUS_LOG_LEVEL", "DEBUG")
    out = io.StringIO()
    assert run_demo(Console(file=out, width=200), state_dir=tmp_path) == 0
    captured = capfd.readouterr()
    lines = (tmp_path / "node.log").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines], out.getvalue() + captured.out + captured.err


def test_logs_and_output_of_a_demo_run_name_no_pinfl(
    demo_run: tuple[list[dict[str, object]], str],
) -> None:
    entries, printed = demo_run
    text = "\n".join(json.dumps(e) for e in entries) + "\n" + printed
    assert entries and printed
    for pinfl in PINFLS:
        assert pinfl not in text, f"PINFL {pinfl[:2]}…{pinfl[-2:]} appears in the logs or output"


def test_each_exchange_is_one_json_line_with_its_context(
    demo_run: tuple[list[dict[str, object]], str],
) -> None:
    entries, _ = demo_run
    assert any(e["level"] == "debug" for e in entries)  # the level came from the config
    exchanges = [e for e in entries if e["logger"] == "bus.gateway" and e["msg"] == "exchange"]
    # the demo's fifteen requests, the four parts of its bundle, the four parts of the benefit's
    # evidence and its application twice, the evidence of the permanent registration and that
    # application twice, and its two requests to the archive
    assert len(exchanges) == 30
    assert sum(1 for e in exchanges if e.get("bundle")) == 8
    for entry in exchanges:
        assert {"ts", "client", "service", "outcome", "status", "duration_ms"} <= set(entry)
        assert entry["client"] == "portal"
    sent = [e for e in exchanges if e["outcome"] != "access-denied"]
    assert all(e["message_id"] and e["correlation"] for e in sent)
    assert sorted(e["outcome"] for e in exchanges) == sorted(
        ["ok"] * 22 + ["no-data"] * 3 + ["access-denied"] + ["accepted"] * 4
    )
    answered = [e for e in entries if e["logger"] == "bus.provider" and e["msg"] == "answered"]
    filed = [e for e in entries
             if e["logger"] == "bus.provider" and e["msg"] == "filed for an operator"]
    accepted = {e["message_id"] for e in sent if e["outcome"] == "accepted"}
    # the repeated application for permanent registration is accepted, then refused unfiled
    repeated = {e["message_id"] for e in answered if e["outcome"] == "provider-rejected"}
    assert len(repeated) == 1 and repeated <= accepted
    assert {e["message_id"] for e in answered} == {e["message_id"] for e in sent} - (
        accepted - repeated)
    assert {e["message_id"] for e in filed} == accepted - repeated  # answered by a person
    by_operator = [
        e for e in entries if e["logger"] == "bus.inbox" and e["msg"] == "operator answered"
    ]
    assert {e["message_id"] for e in by_operator} == accepted - repeated
