"""``Deprecation`` and ``Sunset`` headers on the answers of a deprecated service version.

A version with ``deprecated_on`` (``bus.config.service_info``: only one with a newer version
beside it) keeps working; every answer of its routes — ``/v1/services/{id}`` and
``/soap/{id}``, refusals too — tells the asker so:

    Deprecation: @1798761600                 RFC 9745: the day it is deprecated (00:00 UTC;
                                             a date still to come announces it)
    Sunset: Thu, 01 Jul 2027 00:00:00 GMT    RFC 8594: the day it is withdrawn (if set)
    Link: </v1/catalog/m/s/v1>; rel="deprecation", </v1/catalog/m/s/v2>; rel="successor-version"

In the node's OpenAPI document the deprecated versions' routes are marked ``deprecated``
(``mark_deprecated_routes``). The bus does not switch a version off by itself on its sunset
day: the operator removes it from the configuration, after which its routes answer 404
``unknown-service``.
"""

from __future__ import annotations

import calendar
import datetime as dt
from email.utils import formatdate

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus.config.service_info import successor
from bus.config.settings import BusSettings
from bus.gateway.catalog import CATALOG_PATH
from bus.gateway.soap.endpoint import SOAP_PREFIX

__all__ = ["DeprecationHeaders", "deprecation_headers", "mark_deprecated_routes"]


def _epoch(day: dt.date) -> int:
    return calendar.timegm(day.timetuple())


def deprecation_headers(settings: BusSettings) -> dict[str, list[tuple[bytes, bytes]]]:
    """The headers of each deprecated service's routes, by path."""
    out = {}
    for sid, svc in settings.services.items():
        if svc.deprecated_on is None:
            continue
        headers = [(b"deprecation", f"@{_epoch(svc.deprecated_on)}".encode())]
        if svc.sunset_on is not None:
            sunset = formatdate(_epoch(svc.sunset_on), usegmt=True)
            headers.append((b"sunset", sunset.encode()))
        links = [f'<{CATALOG_PATH}/{sid}>; rel="deprecation"']
        newest = successor(sid, settings.services)
        if newest is not None:
            links.append(f'<{CATALOG_PATH}/{newest}>; rel="successor-version"')
        headers.append((b"link", ", ".join(links).encode()))
        for path in (f"/v1/services/{sid}", f"{SOAP_PREFIX}{sid}"):
            out[path] = headers
    return out


class DeprecationHeaders:
    """ASGI middleware adding ``deprecation_headers`` to the answers of the paths they name."""

    def __init__(self, app: ASGIApp, settings: BusSettings) -> None:
        self.app = app
        self.paths = deprecation_headers(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extra = self.paths.get(scope["path"]) if scope["type"] == "http" else None
        if not extra:
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def mark_deprecated_routes(app: FastAPI, settings: BusSettings) -> None:
    """Mark the service routes of deprecated versions ``deprecated`` in ``app``'s OpenAPI."""
    paths = {f"/v1/services/{sid}" for sid, svc in settings.services.items() if svc.deprecated_on}
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path in paths:
            route.deprecated = True
