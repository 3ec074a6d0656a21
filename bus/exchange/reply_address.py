"""Where a provider may send its answer: only where the client signed it to go.

A request names its reply address in the signed envelope (``reply_to``, with the asking
``node``). A request whose transport reply address differs from the signed one (changed after
signing), that signs none (made before envelopes carried it), or whose signed address is not a
reply queue of the signed asking node (another node's: ``reply.<node>``, or ``reply.<name>.async``
of the node ``<name>`` it is a process of) is not answerable: the provider dead-letters it with
the reason (``reply-address-mismatch``, ``reply-address-unsigned``, ``reply-address-foreign``),
answers nowhere, and never asks the agency.
"""

from __future__ import annotations

from bus.core.envelope import Envelope
from bus.transport import Message, is_reply_queue, reply_queue

__all__ = ["NotAnswerable", "check_reply_address"]


class NotAnswerable(Exception):
    """A verified request that must not be answered where the transport says (``reason``: a
    bounded label, the dead letter's reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_reply_address(request: Envelope, message: Message) -> None:
    """Refuse (``NotAnswerable``) a request whose reply address is not the one its client
    signed, or not a reply queue of the node it signed as asking: an answer sent elsewhere
    would hand the data to whoever changed it, or to another node than the one that asked."""
    if request.reply_to is None or request.node is None:
        raise NotAnswerable("reply-address-unsigned")
    if message.reply_to != request.reply_to or not is_reply_queue(request.reply_to):
        raise NotAnswerable("reply-address-mismatch")
    if not _is_reply_queue_of(request.reply_to, request.node):
        raise NotAnswerable("reply-address-foreign")


def _is_reply_queue_of(queue: str, node: str) -> bool:
    """Whether ``queue`` is a reply queue of ``node``: its own, ``reply.<node>``, or the
    asynchronous one of the node it is a process of, ``reply.<name>.async`` where ``node`` is
    ``<name>`` or ``<name>.<instance>`` (``bus.node.wiring``: ``<name>.<host>.<pid>`` on a
    broker, ``<name>.w<n>`` for a worker)."""
    if queue == reply_queue(node):
        return True
    prefix, suffix = reply_queue(""), ".async"
    if not queue.endswith(suffix):
        return False
    name = queue[len(prefix):-len(suffix)]
    return bool(name) and (node == name or node.startswith(name + "."))
