"""``bench-echo``: a trivial in-process provider, so the benchmark measures the bus, not an agency.

What it talks to: nothing. ``call`` returns a fixed ``ResidenceRegistration`` about the request's
PINFL (``bench.workload.echo_answer``), validated by the service's response model like any
adapter's answer. It never fails, so no errors are mapped.

Options (the keys under ``adapter:`` besides ``kind``):

* ``full_name`` (str, default ``"Benchmark Person"``): the name put in every answer.
* ``delay_s`` (float ≥ 0, default 0): how long the agency takes to answer (a sleep before it):
  the bundle cell's agencies of set speeds, and tests that need a request in flight.

Not an entry point of the installed bus (the bench is not in the wheel): the bench registers it in
its own processes with ``adapters.register_kind`` (``BenchDeployment.write_config`` for a node in
the bench's process, ``python -m bench.serve`` for ``serve`` processes). The
service that uses it must answer with ``schemas.residence.ResidenceRegistration`` (or a model
that accepts the same fields).
"""

from __future__ import annotations

import time
from typing import ClassVar

from pydantic import Field

from adapters import AdapterConfigError, AdapterContext, AdapterOptions, Deadline
from bench.workload import echo_answer
from schemas import SharedRequest, SharedResponse

__all__ = ["EchoAdapter", "EchoOptions"]


class EchoOptions(AdapterOptions):
    full_name: str = "Benchmark Person"
    delay_s: float = Field(default=0.0, ge=0.0)


class EchoAdapter:
    """Answers every request at once with a fixed registration about the request's subject."""

    kind: ClassVar[str] = "bench-echo"
    options_model: ClassVar[type[AdapterOptions]] = EchoOptions

    def __init__(self, options: AdapterOptions, context: AdapterContext) -> None:
        if not isinstance(options, EchoOptions):
            raise AdapterConfigError(f"{context.service}: bench-echo needs EchoOptions")
        self._full_name = options.full_name
        self._delay_s = options.delay_s
        self._response_model = context.response_model

    def call(self, request: SharedRequest, deadline: Deadline) -> SharedResponse:
        if self._delay_s:
            time.sleep(self._delay_s)
        answer = echo_answer(request.subject())
        answer["full_name"] = self._full_name
        return self._response_model.model_validate(answer)

    def close(self) -> None:
        pass
