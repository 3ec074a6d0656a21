"""The envelope work of one exchange, in CPU time: ``python -m bench.envelope_cost``.

Build a request, sign it, write it, read it, verify it, make the reply, sign it, write it, read
it, verify it, and take the bytes the document would store — what the client and the provider
do with envelopes in one exchange, without transport or HTTP. Prints the best of 5 rounds of
1,000, in µs of CPU per exchange. Used to compare two commits alternately (run it in a checkout
of each): a change to ``bus.core.envelope`` or ``bus.core.seal`` shows here long before the whole
bench can tell it from noise.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

from bench.bus_run import BenchDeployment
from bench.workload import CLIENT, PURPOSE, SERVICE, USER, echo_answer, request_body
from bus.config.loader import load_settings
from bus.core.envelope import Envelope, Kind, new_id, utcnow
from bus.core.seal import Seal
from bus.node.trust import load_signers, load_trust

__all__ = ["envelope_cost_us"]

_PINFL = "31505861234567"


def envelope_cost_us(state: Path, *, rounds: int = 5, per_round: int = 1000) -> float:
    """CPU µs of one exchange's envelope work, best of ``rounds``."""
    deployment = BenchDeployment.create(state)
    settings = load_settings(deployment.write_config(f"embedded://{state / 'queues.db'}"))
    trust = load_trust(settings, utcnow)
    seal = Seal(load_signers(settings, trust), trust, clock=utcnow,
                max_skew=dt.timedelta(seconds=30))  # fmt: skip

    def exchange() -> bytes:
        now = utcnow()
        request = Envelope(
            id=new_id(), correlation=new_id(), client=CLIENT, service=SERVICE, user=USER,
            purpose=PURPOSE, subject=_PINFL, issued_at=now,
            expires_at=now + dt.timedelta(seconds=5), kind=Kind.request, payload=request_body(),
        )  # fmt: skip
        wire = seal.sign(request).to_json()  # the client signs and sends
        received = Envelope.from_json(wire)
        seal.verify(received)  # the provider reads and verifies
        answer = received.reply(Kind.response, echo_answer(_PINFL), now=now)
        back = Envelope.from_json(seal.sign(answer).to_json())
        seal.verify(back)  # the client reads and verifies the answer
        return back.to_json()  # what the document stores

    for _ in range(200):
        exchange()
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        for _ in range(per_round):
            exchange()
        best = min(best, (time.process_time() - began) / per_round * 1e6)
    return best


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="bus-envelope-cost-") as folder:
        cost = envelope_cost_us(Path(folder))
    sys.stdout.write(f"{cost:.0f} µs of CPU per exchange's envelope work\n")
