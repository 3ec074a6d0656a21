"""Callback policy: which ``X-Bus-Callback`` URLs a node accepts and which addresses it connects to.

A callback makes the node ``POST`` to an address a member chose, from inside the bus's network:
without limits, any member holding a token could make the node reach its loopback interface,
cloud metadata (169.254.169.254) or an agency's internal systems (server-side request forgery).
``CallbackPolicy`` (settings ``callbacks:``, ``bus.config.callbacks.CallbackSettings``)
therefore denies by default:

- at submit time (``check``): the URL must be ``https`` (``require_https``, default true; or
  ``http`` when turned off), carry no user name or password, and name a host listed in
  ``allowed_hosts`` — exactly (``hooks.portal.example.gov``, an IP address) or as any name under
  a domain (``*.portal.example.gov``, not the domain itself). With no ``allowed_hosts`` (the
  default) every callback is refused. A member with its own ``members.<code>.callback_hosts``
  is held to those instead, so what it asked for goes only to its own receivers, never to a
  host another member announced. A refusal is a 422 ``callback-refused`` problem naming the
  header (``CallbackRefused``); a URL that is not one is a 400 ``malformed-request``. A host
  written as an IP address is also checked as an address (below) at once.
- at each delivery attempt (``target``): the host is resolved, and every address it resolves to
  must be public (``ipaddress``'s ``is_global``, and not multicast), inside
  ``allowed_networks`` (e.g. an interagency network ``10.20.0.0/16``), or ``allow_private`` is
  set (development on one machine). One address refused refuses the delivery: a name that also
  points inward is not used. The request then goes to the checked address itself — the URL's
  host replaced by the IP, ``Host`` and the TLS server name (SNI, also what the certificate is
  verified against) kept as the original host — so a DNS answer that changes between the check
  and the connection (DNS rebinding) is never followed. Redirects are not followed either.

Host names are compared in their ASCII (IDNA) form, lower case, without a trailing dot.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import httpx

from bus.config.callbacks import CallbackSettings
from bus.core.errors import CallbackRefused, MalformedRequest

__all__ = ["HEADER", "CallbackPolicy", "CallbackTarget", "system_resolver"]

HEADER = "X-Bus-Callback"
MAX_URL = 2000

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known NAT64 prefix (RFC 6052)


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (the system resolver, without blocking the loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class CallbackTarget:
    """Where one delivery attempt goes: the URL with a checked IP, and what keeps the host."""

    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Hosts:
    exact: frozenset[str]
    domains: tuple[str, ...]  # ".example.gov" for "*.example.gov"

    @classmethod
    def of(cls, hosts: list[str]) -> _Hosts:
        return cls(frozenset(h for h in hosts if not h.startswith("*.")),
                   tuple(h[1:] for h in hosts if h.startswith("*.")))

    def allow(self, host: str) -> bool:
        literal = _address(host)
        if literal is not None:
            return str(literal) in self.exact
        return host in self.exact or host.endswith(self.domains)


def _address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class CallbackPolicy:
    """The node's rules for callbacks (see the module docstring)."""

    def __init__(self, settings: CallbackSettings, *, resolve: Resolver = system_resolver,
                 member_hosts: Mapping[str, list[str]] | None = None) -> None:
        self.settings = settings
        self.resolve = resolve
        self._anyone = _Hosts.of(settings.allowed_hosts)
        self._members = {code: _Hosts.of(hosts) for code, hosts in (member_hosts or {}).items()}

    def check(self, url: str, *, client: str | None = None) -> httpx.URL:
        """The parsed URL if the policy allows it for ``client``'s requests;
        ``MalformedRequest``/``CallbackRefused``."""
        if len(url) > MAX_URL:
            raise MalformedRequest(f"{HEADER} is longer than {MAX_URL} characters")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise MalformedRequest(f"{HEADER} is not a URL") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise MalformedRequest(f"{HEADER} must be an http(s) URL")
        if parsed.scheme != "https" and self.settings.require_https:
            raise CallbackRefused(f"{HEADER} must be an https URL", reason="https-required")
        if parsed.userinfo:
            raise CallbackRefused(f"{HEADER} must not carry a user name or password",
                                  reason="credentials")
        host = self.host_of(parsed)
        if not self.host_allowed(host, client=client):
            listed = (f"members.{client}.callback_hosts" if client in self._members
                      else "this node's callbacks.allowed_hosts")
            raise CallbackRefused(f"{HEADER}: host {host[:100]!r} is not among {listed}",
                                  reason="host-not-allowed")
        literal = _address(host)
        if literal is not None:
            self.check_address(literal)
        return parsed

    @staticmethod
    def host_of(url: httpx.URL) -> str:
        """The URL's host in ASCII (IDNA), lower case, without brackets or a trailing dot."""
        return url.raw_host.decode("ascii").lower().rstrip(".").strip("[]")

    def host_allowed(self, host: str, *, client: str | None = None) -> bool:
        """Whether a callback of ``client`` may name ``host``: its own ``callback_hosts`` if
        it has them, else the node's ``allowed_hosts``."""
        return self._members.get(client or "", self._anyone).allow(host)

    def address_allowed(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address):  # an IPv4 address carried in IPv6
            if address.ipv4_mapped is not None:
                address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
            elif address.sixtofour is not None and not self.address_allowed(address.sixtofour):
                return False  # 2002:7f00:1::/48 leads to 127.0.0.1
            elif address in _NAT64 and not self.address_allowed(
                ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            ):
                return False  # 64:ff9b::a00:1 leads to 10.0.0.1
        if address.is_multicast or address.is_unspecified:
            return False  # never a server to POST to
        if address.is_global or self.settings.allow_private:
            return True
        return any(address in network for network in self.settings.allowed_networks)

    def check_address(self, address: Address) -> None:
        if not self.address_allowed(address):
            raise CallbackRefused(
                f"{HEADER}: the host is (or resolves to) a non-public address ({address}), which "
                "callbacks may not reach",
                reason="address-refused",
            )

    async def target(self, url: str) -> CallbackTarget:
        """Check ``url`` again, resolve its host, check every address, aim at the first.

        Raises ``CallbackRefused`` (not to be retried) and ``OSError`` for a name that does not
        resolve (to be retried)."""
        parsed = self.check(url)
        host = self.host_of(parsed)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        literal = _address(host)
        if literal is not None:
            return CallbackTarget(parsed)  # checked by ``check``; nothing to resolve
        found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await self.resolve(host, port)]
        if not found:
            raise OSError(f"{host} has no address")
        for address in found:
            self.check_address(address)
        extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
        return CallbackTarget(
            parsed.copy_with(host=str(found[0])),
            headers={"Host": parsed.netloc.decode("ascii")},
            extensions=extensions,
        )
