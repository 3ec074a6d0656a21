"""The router: which service lives where, with which schemas, queue and time budget."""

from __future__ import annotations

from dataclasses import dataclass

from bus.config.settings import BusSettings, ServiceSettings
from bus.core.envelope import provider_of
from bus.core.errors import UnknownService
from bus.transport import service_queue
from schemas import SharedRequest, SharedResponse

__all__ = ["Route", "Router"]


@dataclass(frozen=True)
class Route:
    service: str
    provider: str
    queue: str
    request_model: type[SharedRequest]
    response_model: type[SharedResponse]
    timeout_s: float
    settings: ServiceSettings


class Router:
    def __init__(self, settings: BusSettings) -> None:
        self._routes = {
            sid: Route(
                service=sid,
                provider=provider_of(sid),
                queue=service_queue(sid),
                request_model=svc.request_model(),
                response_model=svc.response_model(),
                timeout_s=svc.timeout_s,
                settings=svc,
            )
            for sid, svc in settings.services.items()
        }

    def route(self, service: str) -> Route:
        try:
            return self._routes[service]
        except KeyError:
            raise UnknownService(f"no service {service!r} on this bus", service=service) from None

    def routes(self) -> list[Route]:
        return list(self._routes.values())

    def provided_by(self, members: list[str]) -> list[Route]:
        return [r for r in self._routes.values() if r.provider in members]
