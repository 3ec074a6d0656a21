"""A delivery that records how a provider worker settled it, for the exchange's unit tests."""

from __future__ import annotations

from bus.transport import Delivery, Message


class RecordedDelivery(Delivery):
    """``message`` delivered from queue ``svc``; ``outcome`` is how the worker settled it:
    ``("ack", None)``, ``("retry", reason)`` or ``("dead-letter", reason)``."""

    def __init__(self, message: Message, *, redelivered: bool = False) -> None:
        super().__init__("svc", message, attempt=1, redelivered=redelivered)
        self.outcome: tuple[str, str | None] | None = None

    def ack(self) -> None:
        self.settled, self.outcome = True, ("ack", None)

    def retry(self, delay_s: float, reason: str) -> None:
        self.settled, self.outcome = True, ("retry", reason)

    def dead_letter(self, reason: str) -> None:
        self.settled, self.outcome = True, ("dead-letter", reason)
