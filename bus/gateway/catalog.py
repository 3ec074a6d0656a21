"""The service catalogue (metaservices): what every service of the bus is and how to ask it.

    GET /v1/catalog                                  every configured service (``Catalog``)
    GET /v1/catalog/{member}/{service}/{version}     one of them (``CatalogEntry``)
    GET /v1/catalog/{…}/request.schema.json          its request's JSON Schema (and response.…)
    GET /v1/catalog.schema.json                      the JSON Schema of ``Catalog`` itself
    GET /catalog                                     a page of it (``bus.gateway.catalog_page``)

The catalogue is built from the configuration (``build_catalog``), so it lists every service
under ``services`` — also those the caller holds no right to and those other nodes host — with
its provider, its versions and their deprecation, the purposes the access rights allow, the
shared schemas (pydantic's ``model_json_schema``), the links to its HTTP route, WSDL and OpenAPI
operation, its time budget and whether it answers at once or later (an official's answer),
its legal basis and its description in Uzbek, Russian and English. The bus's own citizen
report (``bus/citizen-access-log/v1``) is described in the README, not here.

It needs no token: a new agency's developer reads it before they have one. It holds nothing
that is not in the shared schemas and the configuration's public part: no personal data, no
tokens or keys, no addresses of agencies' systems (the adapter's options are left out), and
not which members hold which rights (only the purposes a service may be asked for).
"""
# No "from __future__ import annotations": FastAPI reads the endpoint annotations.

import datetime as dt
from typing import Any, Literal

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from bus.config.service_info import LocalizedText, family, successor, version_number
from bus.config.settings import BusSettings
from bus.core.envelope import SERVICE_PATTERN, provider_of
from bus.core.errors import UnknownService
from bus.gateway.params import caller_value
from bus.gateway.soap.endpoint import SOAP_PREFIX

__all__ = [
    "CATALOG_PATH",
    "Catalog",
    "CatalogEntry",
    "build_catalog",
    "catalog_routes",
    "catalog_schema",
    "expected_answer",
]

CATALOG_PATH = "/v1/catalog"
_CACHE = {"Cache-Control": "public, max-age=60"}
_STRICT = ConfigDict(extra="forbid")


class Member(BaseModel):
    model_config = _STRICT
    code: str = Field(description="member code")
    name: str | None = Field(description="the agency's name, if configured")


class Answer(BaseModel):
    """When and how the answer comes."""

    model_config = _STRICT
    mode: Literal["sync", "async"] = Field(
        description="sync: the answer comes in the response; async: ask with ?mode=async, get "
        "202 and a Location to poll (or an X-Bus-Callback)"
    )
    answered_by: Literal["system", "official"] = Field(
        description="official: a person answers through the agency's operator inbox"
    )
    timeout_s: float = Field(description="how long the bus waits for the answer")
    expected: str = Field(description="the time budget in words, e.g. 'within 5 s'")


class Version(BaseModel):
    model_config = _STRICT
    service: str
    version: str
    deprecated_on: dt.date | None
    sunset_on: dt.date | None


class Links(BaseModel):
    """Where to ask and where the schemas are (paths on this node)."""

    model_config = _STRICT
    endpoint: str = Field(description="POST the request here (JSON)")
    openapi: str = Field(description="the route's operation in this node's OpenAPI document")
    soap: str = Field(description="POST a SOAP 1.1 request here")
    wsdl: str = Field(description="the service's WSDL")
    request_schema: str = Field(description="the request's JSON Schema")
    response_schema: str = Field(description="the response's JSON Schema")
    self: str = Field(description="this entry")


class CatalogEntry(BaseModel):
    model_config = _STRICT
    service: str = Field(description="member/service/version, as asked")
    name: str = Field(description="member/service: the service without its version")
    version: str
    title: str | None
    description: LocalizedText | None = Field(description="in Uzbek, Russian and English")
    legal_basis: str | None
    provider: Member
    purposes: list[str] = Field(
        description="the purposes the access rights allow it to be asked for"
    )
    answer: Answer
    deprecated_on: dt.date | None = Field(description="deprecated from this day on")
    sunset_on: dt.date | None = Field(description="withdrawn from this day on")
    successor: str | None = Field(description="the newest version, when this one is older")
    versions: list[Version] = Field(description="every configured version of this service")
    request_schema: dict[str, Any] = Field(description="JSON Schema of the request body")
    response_schema: dict[str, Any] = Field(description="JSON Schema of the answer's payload")
    links: Links


class Catalog(BaseModel):
    model_config = _STRICT
    count: int = Field(description="number of services")
    services: list[CatalogEntry]


def expected_answer(timeout_s: float) -> str:
    """A time budget in words: 'within 5 s', '… 10 min', '… 6 h', '… 3 days'."""
    for unit, seconds, limit in (("s", 1, 120), ("min", 60, 7200), ("h", 3600, 172_800)):
        if timeout_s < limit:
            return f"within {timeout_s / seconds:g} {unit}"
    return f"within {timeout_s / 86400:g} days"


def _links(service: str) -> Links:
    pointer = f"/v1/services/{service}".replace("~", "~0").replace("/", "~1")
    return Links(
        endpoint=f"/v1/services/{service}",
        openapi=f"/openapi.json#/paths/{pointer}/post",
        soap=f"{SOAP_PREFIX}{service}",
        wsdl=f"{SOAP_PREFIX}{service}?wsdl",
        request_schema=f"{CATALOG_PATH}/{service}/request.schema.json",
        response_schema=f"{CATALOG_PATH}/{service}/response.schema.json",
        self=f"{CATALOG_PATH}/{service}",
    )


def build_catalog(settings: BusSettings) -> Catalog:
    """The catalogue of every service in ``settings``, by service id."""
    entries = []
    for sid in sorted(settings.services, key=lambda s: (family(s), version_number(s))):
        svc = settings.services[sid]
        provider = provider_of(sid)
        member = settings.members.get(provider)
        purposes = sorted({p for r in settings.access if r.service == sid for p in r.purpose})
        versions = [
            Version(service=v, version=v.rsplit("/", 1)[1],
                    deprecated_on=settings.services[v].deprecated_on,
                    sunset_on=settings.services[v].sunset_on)
            for v in sorted(settings.services, key=version_number)
            if family(v) == family(sid)
        ]
        entries.append(CatalogEntry(
            service=sid,
            name=family(sid),
            version=sid.rsplit("/", 1)[1],
            title=svc.title,
            description=svc.description,
            legal_basis=svc.legal_basis,
            provider=Member(code=provider, name=member.name if member is not None else None),
            purposes=purposes,
            answer=Answer(
                mode="async" if svc.async_only else "sync",
                answered_by="official" if svc.adapter.kind == "manual" else "system",
                timeout_s=svc.timeout_s,
                expected=expected_answer(svc.timeout_s),
            ),
            deprecated_on=svc.deprecated_on,
            sunset_on=svc.sunset_on,
            successor=successor(sid, settings.services),
            versions=versions,
            request_schema=svc.request_model().model_json_schema(),
            response_schema=svc.response_model().model_json_schema(),
            links=_links(sid),
        ))
    return Catalog(count=len(entries), services=entries)


def catalog_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of the catalogue's JSON form."""
    schema = Catalog.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{CATALOG_PATH}.schema.json",
        **schema,
    }


def _json(value: Any) -> Response:
    return Response(orjson.dumps(value), media_type="application/json", headers=_CACHE)


def catalog_routes(settings: BusSettings) -> APIRouter:
    """The catalogue's JSON routes (no token needed; see the module docstring)."""
    router = APIRouter(tags=["catalog"])
    catalog = build_catalog(settings)
    entries = {e.service: e for e in catalog.services}
    whole = orjson.dumps(catalog.model_dump(mode="json"))
    schema = catalog_schema()

    def entry(member: str, service: str, version: str) -> CatalogEntry:
        sid = f"{member}/{service}/{version}"
        found = entries.get(sid)
        if found is None:  # named back only if it is a service id holding no personal identifier
            named = caller_value(sid, SERVICE_PATTERN)
            raise UnknownService(f"no service {named!r} on this bus" if named else
                                 "no such service on this bus", service=named)
        return found

    @router.get(CATALOG_PATH, response_model=Catalog)
    async def every_service() -> Response:
        """Every service of the bus (all configured, whatever the caller's rights); no token."""
        return Response(whole, media_type="application/json", headers=_CACHE)

    @router.get(f"{CATALOG_PATH}.schema.json")
    async def published_schema() -> Response:
        """The JSON Schema of ``GET /v1/catalog``'s answer."""
        return _json(schema)

    @router.get(CATALOG_PATH + "/{member}/{service}/{version}", response_model=CatalogEntry)
    async def one_service(member: str, service: str, version: str) -> Response:
        """One service's entry (404 unknown-service for an id not configured)."""
        return _json(entry(member, service, version).model_dump(mode="json"))

    @router.get(CATALOG_PATH + "/{member}/{service}/{version}/{part}.schema.json")
    async def part_schema(member: str, service: str, version: str, part: str) -> Response:
        """The JSON Schema of the service's request body (``request``) or of its answer's
        payload (``response``)."""
        found = entry(member, service, version)
        if part not in ("request", "response"):
            raise UnknownService(f"no schema {part!r}: request or response", service=found.service)
        return _json(found.request_schema if part == "request" else found.response_schema)

    return router

