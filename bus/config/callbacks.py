"""The ``callbacks:`` settings and the host lists of ``callbacks.allowed_hosts`` and
``members.<code>.callback_hosts`` (``bus.config.settings``), as ``bus.policy.callbacks`` applies
them."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, IPvAnyNetwork

__all__ = ["CallbackHosts", "CallbackSettings"]

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")  # a name, or *.domain


def _callback_hosts(v: list[str]) -> list[str]:
    out = []
    for entry in v:
        host = entry.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")
        try:
            out.append(str(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        if not _HOST_NAME.match(host) or len(host) > 253:
            raise ValueError(f"{entry!r} is not a host name, *.domain or IP address")
        if host.startswith("*.") and "." not in host[2:]:
            raise ValueError(f"{entry!r} is too wide: name a domain under a top-level one")
        out.append(host)
    return out


# normalised: lower case ASCII, no trailing dot, IP addresses in their canonical form
CallbackHosts = Annotated[list[str], AfterValidator(_callback_hosts)]


class CallbackSettings(BaseModel):
    """Where ``X-Bus-Callback`` may send asynchronous results (``bus.policy.callbacks``).

    Deny by default: with no ``allowed_hosts`` every callback is refused, only https is
    accepted, and no callback reaches a loopback, private, link-local or other non-public
    address (checked on the resolved addresses, at each delivery)."""

    model_config = ConfigDict(extra="forbid")
    allowed_hosts: CallbackHosts = Field(
        default_factory=list,
        description="hosts a callback may name: a name (hooks.portal.example.gov), every name "
        "under a domain (*.portal.example.gov), or an IP address; none: callbacks refused. "
        "A member with its own members.<code>.callback_hosts is held to those instead",
    )
    require_https: bool = Field(default=True, description="refuse http:// callbacks")
    allowed_networks: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="non-public networks callbacks may reach nevertheless (an interagency "
        "network such as 10.20.0.0/16)",
    )
    allow_private: bool = Field(
        default=False,
        description="let callbacks reach any non-public address (loopback, private, "
        "link-local): for development on one machine only",
    )
