"""What ``dlq list`` calls ``executed``: the audit entries that say the agency answered."""

from __future__ import annotations

import pytest

from bus.records.audit.chain import AuditRecord
from bus.records.audit.executions import was_executed


def _entry(side: str, outcome: str) -> AuditRecord:
    return AuditRecord(
        message_id="m-1", correlation="m-1", client="portal", provider="cadastre",
        service="cadastre/property-ownership/v1", user="officer-17", purpose="housing-subsidy",
        subject=None, outcome=outcome, side=side, requested_at="2026-01-01T00:00:00+00:00",
        response_digest=None,
    )


@pytest.mark.parametrize(
    ("side", "outcome", "executed"),
    [
        ("provider", "ok", True),
        ("provider", "no-data", True),
        ("provider:re-executed", "ok", True),  # the worker before it died unrecorded
        ("provider:re-executed", "no-data", True),
        ("operator:dilnoza", "ok", True),
        ("operator:dilnoza", "read", False),  # a task read is not an answer
        ("provider", "provider-unavailable", False),
        ("gateway", "ok", False),
    ],
)
def test_an_entry_says_executed_only_when_the_agency_answered(
    side: str, outcome: str, executed: bool
) -> None:
    assert was_executed(_entry(side, outcome)) is executed
