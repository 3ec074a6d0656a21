"""Access rights: who may ask which service, for which purposes, seeing which fields, and when.

Deny by default: a request passes only if a right names its client, its service, lists its
purpose, and is valid now (``valid_from`` <= now < ``valid_until``, each optional). ``check``
returns the matching right (its ``fields`` drive field minimisation on the provider's node) or
raises ``AccessDenied`` saying why (``reason``: ``no-right``, ``purpose-not-allowed``,
``not-yet-valid``, ``expired-right``); ``explain`` says the same in words
(``run_bus.py access check``). The clock is passed in (``clock``), so tests need no real time.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from bus.config.settings import CITIZEN_ACCESS_LOG, AccessRight
from bus.core.errors import AccessDenied

__all__ = ["CITIZEN_ACCESS_LOG", "AccessPolicy", "minimise"]

def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AccessPolicy:
    def __init__(
        self, rights: list[AccessRight], *, clock: Callable[[], dt.datetime] = _utcnow
    ) -> None:
        self.clock = clock
        self._rights: dict[tuple[str, str], list[AccessRight]] = defaultdict(list)
        for right in rights:
            self._rights[(right.client, right.service)].append(right)

    def check(
        self, client: str, service: str, purpose: str, *, at: dt.datetime | None = None
    ) -> AccessRight:
        """The right ``client`` holds on ``service`` for ``purpose`` at ``at`` (default: now)."""
        rights = self._rights.get((client, service))
        ctx: dict[str, Any] = {"client": client, "service": service}
        if not rights:
            raise AccessDenied(f"{client!r} has no access right to {service!r}", **ctx)
        when = at if at is not None else self.clock()
        for_purpose = [r for r in rights if purpose in r.purpose]
        for right in for_purpose:
            if right.valid_at(when):
                return right
        if for_purpose:
            if all(r.valid_from is not None and when < r.valid_from for r in for_purpose):
                starts = min(r.valid_from for r in for_purpose if r.valid_from is not None)
                raise AccessDenied(
                    f"the right of {client!r} on {service!r} for {purpose!r} is valid only "
                    f"from {starts.isoformat()}",
                    reason="not-yet-valid",
                    **ctx,
                )
            ended = max(r.valid_until for r in for_purpose if r.valid_until is not None)
            raise AccessDenied(
                f"the right of {client!r} on {service!r} for {purpose!r} ended at "
                f"{ended.isoformat()}",
                reason="expired-right",
                **ctx,
            )
        allowed = sorted({p for r in rights for p in r.purpose})
        raise AccessDenied(
            f"purpose {purpose!r} is not allowed for {client!r} on {service!r}"
            f" (allowed: {allowed})",
            reason="purpose-not-allowed",
            **ctx,
        )

    def explain(
        self, client: str, service: str, purpose: str, *, at: dt.datetime | None = None
    ) -> tuple[bool, str]:
        try:
            right = self.check(client, service, purpose, at=at)
        except AccessDenied as exc:
            return False, f"denied: {exc.detail}"
        fields = "all fields" if right.fields is None else "fields " + ", ".join(right.fields)
        window = ""
        if right.valid_from is not None:
            window += f", from {right.valid_from.isoformat()}"
        if right.valid_until is not None:
            window += f", until {right.valid_until.isoformat()}"
        text = f"allowed: {client} may call {service} for {purpose!r}, seeing {fields}"
        return True, text + window


def minimise(payload: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """Keep only the top-level ``fields`` of a response payload (all when ``fields`` is None)."""
    if fields is None:
        return payload
    return {k: v for k, v in payload.items() if k in fields}
