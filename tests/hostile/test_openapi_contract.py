"""The OpenAPI document tells the truth: schemathesis, with every check, against the demo node.

Each operation of the node's ``/openapi.json`` is fuzzed with schema-valid (positive) and
schema-breaking (negative) requests, sent with the portal's token to the demo gateway running
in this process; every answer must match the document (status documented, content type,
headers, body schema), valid data must be taken, invalid data refused, and nothing may be a
server error. Derandomised, so a run is the same run every time.

The positive requests are the document's valid data as it stands: a service's ``X-Bus-Purpose``
is one its access rights name (the document's enum), so each service is really asked and
must answer 200 (or 202 with ``mode=async``) at least once, its answer checked against the
schema a client gets after field minimisation. What names one request is made unique by the
test, as a client does: a positive case's ``Idempotency-Key`` (the same key with another request
is a 422 by design: tests/integration/test_idempotency.py) and any case's well-formed
``application_id`` (the agency refuses the same id with other content: 502 provider-rejected).
``X-Bus-Callback`` is left out of positive cases, since the demo node's callback policy allows
no host (tests/hostile/test_public_urls.py), and every other ``pinfl`` they ask about is one of
the demo people, so the agencies find records and the minimised answers are checked, not only
no-data.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from demo.data import PEOPLE
from demo.scenario import DemoStack, start_stack

EXAMPLES = 40  # per operation and mode; fewer where an operation has fewer distinct inputs
MIN_CASES = 1000



@pytest.fixture(scope="module")
def fuzzed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    """The demo node with the per-source throttles opened wide (set as an operator would, in
    the environment): the fuzzer sends every request from one address, many with a wrong token
    on purpose, and this test is about the contract (429 is in it); test_throttle.py tests
    the throttles."""
    with pytest.MonkeyPatch.context() as env:
        for area in ("ANONYMOUS", "PUBLIC", "SIGN_IN"):
            env.setenv(f"BUS_HTTP__{area}__BURST", "100000")
            env.setenv(f"BUS_HTTP__{area}__PER_SECOND", "1000")
        stack = start_stack(Path(tmp_path_factory.mktemp("fuzzed")))
    try:
        yield stack
    finally:
        stack.stop()


def _one_request(case: Any, number: int) -> None:
    """What names one request made unique, no callback, and every other asked person one the
    demo agencies know (see the module docstring)."""
    if case.headers:
        case.headers.pop("X-Bus-Callback", None)
        if "Idempotency-Key" in case.headers:
            case.headers["Idempotency-Key"] = f"fuzzed-{number}"
    if not isinstance(case.body, dict):
        return
    if isinstance(case.body.get("pinfl"), str) and number % 2:
        case.body["pinfl"] = PEOPLE[number // 2 % len(PEOPLE)].pinfl  # someone the agencies know


def _one_application(case: Any, number: int) -> None:
    """A valid ``application_id`` made unique, in any mode (see the module docstring)."""
    if isinstance(case.body, dict) and isinstance(case.body.get("application_id"), str):
        try:
            uuid.UUID(case.body["application_id"])
        except ValueError:
            return  # what a negative case breaks stays broken
        case.body["application_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fuzzed-{number}"))


@pytest.mark.timeout(300)  # ~1,000 requests: about a minute on 2 cores
def test_every_answer_matches_the_document(fuzzed_stack: DemoStack) -> None:
    demo_stack = fuzzed_stack
    url = demo_stack.gateway.url
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    auth = {"Authorization": f"Bearer {demo_stack.token}"}
    failures: list[str] = []
    cases = 0
    seen: dict[str, set[int]] = defaultdict(set)  # operation -> the statuses it answered
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def check(case: Any) -> None:
                nonlocal cases
                cases += 1
                if case.meta.generation.mode is GenerationMode.POSITIVE:
                    _one_request(case, cases)
                _one_application(case, cases)
                response = case.call_and_validate(base_url=url, headers=auth)  # all checks
                seen[case.operation.label].add(response.status_code)

            try:
                check()
            except Unsatisfiable:  # no negative request exists (e.g. no parameters at all)
                continue
            except BaseException as exc:  # schemathesis' FailureGroup, one per operation
                failures.append(f"{operation.label} ({mode}): {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
    assert cases >= MIN_CASES, cases
    services = {label: statuses for label, statuses in seen.items()
                if label.startswith("POST /v1/services/")}
    assert len(services) >= 11
    never = {label: sorted(statuses) for label, statuses in services.items()
             if not statuses & {200, 202}}
    assert not never, never  # each service was really asked and answered
