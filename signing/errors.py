"""Errors of the signing layer. ``reason`` is a short, bounded label (used in metrics)."""

from __future__ import annotations

__all__ = ["SigningError"]


class SigningError(Exception):
    """A signature could not be made or verified.

    ``reason`` is one of: ``malformed`` (not a detached JWS we accept), ``unsupported-alg``,
    ``unknown-key`` (the key id is not in the trust store), ``bad-signature`` (the bytes do not
    match), ``key-error`` (a key file could not be read).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
