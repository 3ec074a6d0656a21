"""The members' API tokens: ``Authorization: Bearer <token>`` → the member it belongs to.

A token is configured as its SHA-256 (``members.X.api_token_sha256``); the one sent is hashed
and compared with every configured digest in constant time, so neither the comparison nor which
member matched shows in the time taken. A token of a member this node does not host is refused
as well: this node signs only for the members it hosts.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from bus.config.settings import MemberSettings
from bus.core.errors import Unauthenticated

__all__ = ["ApiTokens"]


class ApiTokens:
    """``member(authorization)``: the member of an ``Authorization`` header value, or
    ``Unauthenticated`` with its ``reason`` (missing-token, unknown-token, not-hosted)."""

    def __init__(self, members: dict[str, MemberSettings], hosts: Callable[[str], bool]) -> None:
        self._tokens = {
            bytes.fromhex(m.api_token_sha256): code
            for code, m in members.items()
            if m.api_token_sha256
        }
        self._hosts = hosts

    def member(self, authorization: str | None) -> str:
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthenticated(
                "send Authorization: Bearer <member API token>", reason="missing-token"
            )
        digest = hashlib.sha256(authorization.removeprefix("Bearer ").strip().encode()).digest()
        member = None
        for known, code in self._tokens.items():
            if hmac.compare_digest(known, digest):
                member = code
        if member is None:
            raise Unauthenticated("unknown API token", reason="unknown-token")
        if not self._hosts(member):
            raise Unauthenticated(
                f"member {member!r} is not served by this node", reason="not-hosted"
            )
        return member
