"""The OpenAPI document tells the truth: schemathesis, with every check, against the demo node.

Each operation of the node's ``/openapi.json`` is fuzzed with schema-valid (positive) and
schema-breaking (negative) requests, sent with the portal's token to the demo gateway running
in this process; every answer must match the document (status documented, content type,
headers, body schema), valid data must be taken, invalid data refused, and nothing may be a
server error. Derandomised, so a run is the same run every time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from demo.scenario import DemoStack, start_stack

EXAMPLES = 60  # per operation and mode; fewer where an operation has fewer distinct inputs
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


@pytest.mark.timeout(300)  # ~1,000 requests: about a minute on 2 cores
def test_every_answer_matches_the_document(fuzzed_stack: DemoStack) -> None:
    demo_stack = fuzzed_stack
    url = demo_stack.gateway.url
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    auth = {"Authorization": f"Bearer {demo_stack.token}"}
    failures: list[str] = []
    cases = 0
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
                case.call_and_validate(base_url=url, headers=auth)  # all checks enabled

            try:
                check()
            except Unsatisfiable:  # no negative request exists (e.g. no parameters at all)
                continue
            except BaseException as exc:  # schemathesis' FailureGroup, one per operation
                failures.append(f"{operation.label} ({mode}): {exc}"[:3000])
    assert not failures, "\n\n".join(failures)
    assert cases >= MIN_CASES, cases
