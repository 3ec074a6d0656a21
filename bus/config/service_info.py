"""What a service says about itself in the catalogue (``GET /v1/catalog``), and the versioning
rules a configuration must keep.

A service may carry, beside its request, response and adapter:

    description:  {uz: …, ru: …, en: …}     what it gives, in the three languages (all three)
    legal_basis:  "Cabinet of Ministers resolution No. 500 of 2019"   why agencies may ask
    deprecated_on: 2027-01-01               this version is deprecated from that day on
    sunset_on:     2027-07-01               and is withdrawn from that day on

Versioning rules (``version_problems``, checked when a configuration is loaded):

- a service id is ``member/service/vN``; the ids with the same ``member/service`` are the
  versions of one service, and a new version is a new id beside the old one (``…/v2`` beside
  ``…/v1``), each with its own schemas, route, WSDL and access rights;
- only a version that has a newer version configured may be deprecated (askers must have
  somewhere to go): the newest version of a service is never deprecated;
- ``sunset_on`` needs ``deprecated_on`` and comes after it.

A deprecated version keeps working; its answers carry the ``Deprecation`` and ``Sunset``
headers (``bus.gateway.deprecation``) and the catalogue shows the dates and the successor.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LocalizedText", "family", "successor", "version_number", "version_problems"]

_VERSION = re.compile(r"^(.+)/v([0-9]+)$")


class LocalizedText(BaseModel):
    """One text in Uzbek, Russian and English (every language is required)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    uz: str = Field(min_length=1, max_length=2000, description="in Uzbek (Latin script)")
    ru: str = Field(min_length=1, max_length=2000, description="in Russian")
    en: str = Field(min_length=1, max_length=2000, description="in English")


class _Versioned(Protocol):
    @property
    def deprecated_on(self) -> dt.date | None: ...

    @property
    def sunset_on(self) -> dt.date | None: ...


def family(service: str) -> str:
    """``member/service`` of ``member/service/vN`` (the service without its version)."""
    match = _VERSION.match(service)
    return match.group(1) if match else service


def version_number(service: str) -> int:
    """N of ``member/service/vN`` (0 for an id that is not versioned)."""
    match = _VERSION.match(service)
    return int(match.group(2)) if match else 0


def successor(service: str, services: Mapping[str, object]) -> str | None:
    """The newest version of ``service``'s family among ``services``, if newer than it."""
    newer = [
        sid for sid in services
        if family(sid) == family(service) and version_number(sid) > version_number(service)
    ]
    return max(newer, key=version_number) if newer else None


def version_problems(services: Mapping[str, _Versioned]) -> list[tuple[str, str]]:
    """(config path, message) for each break of the versioning rules above."""
    problems = []
    for sid, service in services.items():
        if service.deprecated_on is not None and successor(sid, services) is None:
            problems.append((
                f"services.{sid}.deprecated_on",
                f"only a version with a newer one beside it may be deprecated: configure "
                f"{family(sid)}/v{version_number(sid) + 1} first",
            ))
        if service.sunset_on is not None:
            if service.deprecated_on is None:
                problems.append((
                    f"services.{sid}.sunset_on",
                    "a version is withdrawn only after it was deprecated: give deprecated_on",
                ))
            elif service.sunset_on <= service.deprecated_on:
                problems.append((
                    f"services.{sid}.sunset_on",
                    f"must be later than deprecated_on ({service.deprecated_on.isoformat()})",
                ))
    return problems
