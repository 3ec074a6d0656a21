"""Access rights: who may ask which service, for which purposes, seeing which fields.

Deny by default: a request passes only if a right names its client, its service, and lists its
purpose. ``check`` returns the matching right (its ``fields`` drive field minimisation on the
provider's node) or raises ``AccessDenied`` saying why; ``explain`` says the same in words.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bus.config import AccessRight
from bus.errors import AccessDenied

__all__ = ["AccessPolicy", "minimise"]


class AccessPolicy:
    def __init__(self, rights: list[AccessRight]) -> None:
        self._rights: dict[tuple[str, str], list[AccessRight]] = defaultdict(list)
        for right in rights:
            self._rights[(right.client, right.service)].append(right)

    def check(self, client: str, service: str, purpose: str) -> AccessRight:
        rights = self._rights.get((client, service))
        ctx: dict[str, Any] = {"client": client, "service": service}
        if not rights:
            raise AccessDenied(f"{client!r} has no access right to {service!r}", **ctx)
        for right in rights:
            if purpose in right.purpose:
                return right
        allowed = sorted({p for r in rights for p in r.purpose})
        raise AccessDenied(
            f"purpose {purpose!r} is not allowed for {client!r} on {service!r}"
            f" (allowed: {allowed})",
            reason="purpose-not-allowed",
            **ctx,
        )

    def explain(self, client: str, service: str, purpose: str) -> tuple[bool, str]:
        try:
            right = self.check(client, service, purpose)
        except AccessDenied as exc:
            return False, f"denied: {exc.detail}"
        fields = "all fields" if right.fields is None else "fields " + ", ".join(right.fields)
        return True, f"allowed: {client} may call {service} for {purpose!r}, seeing {fields}"


def minimise(payload: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """Keep only the top-level ``fields`` of a response payload (all when ``fields`` is None)."""
    if fields is None:
        return payload
    return {k: v for k, v in payload.items() if k in fields}
