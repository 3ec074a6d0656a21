"""One settings model for a node: ``BusSettings`` and its parts, with ``BUS_`` environment
overrides (``BUS_TRANSPORT__URL``, ``BUS_NODE__LISTEN`` …, nested with ``__``) and
``extra="forbid"`` at every level, so a typo is an error. Loading a YAML file, cross-checking
references and reporting problems with file, line and path is ``bus.config.loader``. Nothing
else in the bus reads ``os.environ``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bus.config.callbacks import CallbackHosts, CallbackSettings
from bus.config.citizens import CitizenSettings
from bus.config.http import HttpSettings
from bus.config.records import AuditSettings, DocumentSettings, MessageSettings
from bus.config.service_info import LocalizedText
from bus.core.envelope import MEMBER_PATTERN, SERVICE_PATTERN
from schemas import SharedRequest, SharedResponse

__all__ = [
    "BUILTIN_SERVICES",
    "CITIZEN_ACCESS_LOG",
    "SYNC_TIMEOUT_MAX_S",
    "AccessRight",
    "AdapterSettings",
    "AuditSettings",
    "BusSettings",
    "CallbackSettings",
    "CitizenSettings",
    "DocumentSettings",
    "InboxSettings",
    "Language",
    "LocalizedText",
    "MemberSettings",
    "MessageSettings",
    "NodeSettings",
    "OperatorSettings",
    "RateLimitSettings",
    "ServiceSettings",
    "TransportSettings",
    "TrustSettings",
    "import_object",
]

_STRICT = ConfigDict(extra="forbid")
Language = Literal["uz", "ru", "en"]  # the languages of people-facing texts (bus.gateway.i18n)
SYNC_TIMEOUT_MAX_S = 300.0  # longest a synchronous request may wait for its answer
MAX_TIMEOUT_S = 30 * 86400.0  # longest any request waits (an operator's answer, say)
_MANUAL_TIMEOUT_MIN_S = 600.0

# The bus's own service: a citizen's "who read my data" report (``bus.gateway.citizens``). It has no
# provider member and no entry under ``services``; access rights name it like any other.
CITIZEN_ACCESS_LOG = "bus/citizen-access-log/v1"
BUILTIN_SERVICES = frozenset({CITIZEN_ACCESS_LOG})


class NodeSettings(BaseModel):
    model_config = _STRICT
    name: str = Field(default="node-1", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    hosts: list[str] = Field(default_factory=list, description="members whose keys this node holds")
    keys_dir: Path = Path("keys")
    listen: str = Field(default="127.0.0.1:8080", pattern=r"^[^:\s]+:[0-9]{1,5}$")
    default_timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_body_bytes: int = Field(default=262_144, gt=0, le=16_777_216)
    workers: int = Field(default=8, ge=1, le=256, description="provider worker threads")
    key_passphrase: SecretStr | None = Field(
        default=None,
        description="passphrase of the hosted members' encrypted private keys "
        "(set it from the environment: BUS_NODE__KEY_PASSPHRASE)",
    )
    time_zone: str = Field(
        default="UTC",
        description="IANA time zone the node's pages show times in (e.g. Asia/Tashkent)",
    )
    language: Language = Field(
        default="en",
        description="language of pages and problem titles when the request asks for none of "
        "ours (uz: Uzbek in Latin script, ru: Russian, en: English)",
    )

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = f"{v!r} is not an IANA time zone (such as UTC or Asia/Tashkent)"
            raise ValueError(zone) from None
        return v

    @field_validator("hosts")
    @classmethod
    def _members(cls, v: list[str]) -> list[str]:
        for m in v:
            if not re.match(MEMBER_PATTERN, m):
                raise ValueError(f"{m!r} is not a member code (lowercase letters, digits, '-')")
        return v


class TransportSettings(BaseModel):
    model_config = _STRICT
    url: SecretStr = Field(
        default=SecretStr("embedded://var/queues.db"),
        description="embedded://PATH or amqp://user:pass@host/vhost",
    )
    durable_sync: Literal["normal", "full"] = "normal"
    password: SecretStr | None = Field(
        default=None,
        description="broker password, put into an amqp url that has none "
        "(set it from the environment: BUS_TRANSPORT__PASSWORD)",
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: SecretStr) -> SecretStr:
        url = v.get_secret_value()
        if not url.startswith(("embedded://", "amqp://", "amqps://")):
            raise ValueError("transport url must start with embedded://, amqp:// or amqps://")
        return v


class RateLimitSettings(BaseModel):
    """A token bucket per member and gateway node: ``per_second`` on average, ``burst`` at once."""

    model_config = _STRICT
    per_second: float = Field(gt=0, le=100_000, description="tokens added per second")
    burst: int = Field(default=10, ge=1, le=100_000, description="bucket size")


class MemberSettings(BaseModel):
    """A member, trusted through its bare public key or through its certificates (one of both)."""

    model_config = _STRICT
    public_key: Path | None = Field(default=None, description="Ed25519 public key (PEM)")
    certificate: Path | None = Field(
        default=None,
        description="certificates issued by the bus CA (PEM bundle: current first, then older "
        "ones not yet expired)",
    )
    api_token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    name: str | None = None
    rate_limit: RateLimitSettings | None = Field(
        default=None, description="requests this member may make at a gateway; none: no limit"
    )
    callback_hosts: CallbackHosts | None = Field(
        default=None,
        description="the only hosts this member's X-Bus-Callback may name (as callbacks."
        "allowed_hosts), so its results go to its own receivers; none: callbacks.allowed_hosts",
    )

    @model_validator(mode="after")
    def _one_way_of_trust(self) -> MemberSettings:
        if (self.public_key is None) == (self.certificate is None):
            raise ValueError("name either public_key or certificate (exactly one)")
        return self


class TrustSettings(BaseModel):
    """How this node decides whom to trust (members' keys come from ``members``)."""

    model_config = _STRICT
    ca: Path | None = Field(default=None, description="the bus CA certificate (PEM)")
    crl: Path | None = Field(
        default=None, description="the bus CA's revocation list (PEM), re-read when it changes"
    )
    reload_s: float = Field(
        default=5.0, gt=0, le=3600, description="how often certificate and CRL files are checked"
    )
    max_clock_skew_s: float = Field(
        default=30.0, ge=0, le=600, description="how far in the future issued_at may be"
    )
    replay_window: int = Field(
        default=100_000, ge=1_000, le=10_000_000, description="envelope ids remembered (replay)"
    )


class AdapterSettings(BaseModel):
    """``kind`` picks the adapter; every other key is an option of that kind (checked by it)."""

    model_config = ConfigDict(extra="allow")
    kind: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RetrySettings(BaseModel):
    model_config = _STRICT
    attempts: int = Field(default=1, ge=1, le=20, description="adapter calls per delivery")
    backoff: Literal["exponential", "fixed"] = "exponential"
    max_delay_s: float = Field(default=2.0, ge=0, le=600)
    redeliveries: int = Field(
        default=0,
        ge=0,
        le=20,
        description="times a still-failing request goes back through the transport's retry "
        "queues before it is answered with the error and dead-lettered",
    )
    redelivery_delay_s: float = Field(
        default=0.5, gt=0, le=3600, description="first redelivery delay; doubles each time"
    )


class BreakerSettings(BaseModel):
    model_config = _STRICT
    failures: int = Field(
        default=5, ge=0, le=1000, description="consecutive transient failures that open it; 0: off"
    )
    reset_s: float = Field(default=30.0, gt=0, le=3600, description="open this long, then probe")


class ServiceSettings(BaseModel):
    model_config = _STRICT
    request: str
    response: str
    adapter: AdapterSettings
    timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=MAX_TIMEOUT_S,
        description="how long the asker waits for the answer; above "
        f"{SYNC_TIMEOUT_MAX_S:g} s the service is asked only with ?mode=async",
    )
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    title: str | None = None
    description: LocalizedText | None = Field(
        default=None, description="what the service gives, in Uzbek, Russian and English"
    )
    legal_basis: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="the law or resolution under which agencies may ask (shown in the catalogue)",
    )
    deprecated_on: dt.date | None = Field(
        default=None,
        description="this version is deprecated from this day on (a newer version must be "
        "configured); its answers carry Deprecation and Sunset headers",
    )
    sunset_on: dt.date | None = Field(
        default=None, description="this version is withdrawn from this day on (after deprecated_on)"
    )

    @field_validator("request")
    @classmethod
    def _request_model(cls, v: str) -> str:
        _import_model(v, SharedRequest)
        return v

    @field_validator("response")
    @classmethod
    def _response_model(cls, v: str) -> str:
        _import_model(v, SharedResponse)
        return v

    @model_validator(mode="after")
    def _operator_time(self) -> ServiceSettings:
        if self.adapter.kind == "manual" and self.timeout_s < _MANUAL_TIMEOUT_MIN_S:
            raise ValueError(
                "a manual service waits for a person: give timeout_s in hours or days "
                "(e.g. 259200 for 3 days)"
            )
        return self

    @property
    def async_only(self) -> bool:
        """Answered later than a synchronous request may wait: asked only with ?mode=async."""
        return self.adapter.kind == "manual" or self.timeout_s > SYNC_TIMEOUT_MAX_S

    def request_model(self) -> type[SharedRequest]:
        return _import_model(self.request, SharedRequest)  # type: ignore[return-value]

    def response_model(self) -> type[SharedResponse]:
        return _import_model(self.response, SharedResponse)  # type: ignore[return-value]


class OperatorSettings(BaseModel):
    """An official who answers the operator inbox of the members named (``bus.inbox.desk``)."""

    model_config = _STRICT
    token_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex of the operator's password"
    )
    name: str = Field(
        default="", max_length=200, description="the official's full name, shown on the page"
    )
    members: list[Annotated[str, Field(pattern=MEMBER_PATTERN)]] = Field(
        min_length=1, description="the agencies whose tasks this operator answers"
    )


class InboxSettings(BaseModel):
    """Who may answer the ``manual`` services' tasks on the node's ``/inbox`` page."""

    model_config = _STRICT
    operators: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")], OperatorSettings] = (
        Field(default_factory=dict)
    )


class AccessRight(BaseModel):
    model_config = _STRICT
    client: str = Field(pattern=MEMBER_PATTERN)
    service: str = Field(pattern=SERVICE_PATTERN)
    purpose: list[str] = Field(min_length=1)
    fields: list[str] | None = Field(
        default=None, description="response fields visible; all if absent"
    )
    valid_from: AwareDatetime | None = Field(
        default=None, description="the right applies from this time on (with a UTC offset)"
    )
    valid_until: AwareDatetime | None = Field(
        default=None, description="the right applies until this time, excluded"
    )

    @model_validator(mode="after")
    def _window(self) -> AccessRight:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be later than valid_from")
        return self

    def valid_at(self, when: dt.datetime) -> bool:
        """Whether ``when`` lies in the right's validity window."""
        if self.valid_from is not None and when < self.valid_from:
            return False
        return self.valid_until is None or when < self.valid_until


class BusSettings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="forbid",
        env_prefix="BUS_",
        env_nested_delimiter="__",
        nested_model_default_partial_update=True,
    )

    node: NodeSettings = Field(default_factory=NodeSettings)
    transport: TransportSettings = Field(default_factory=TransportSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    members: dict[Annotated[str, Field(pattern=MEMBER_PATTERN)], MemberSettings] = Field(
        default_factory=dict
    )
    trust: TrustSettings = Field(default_factory=TrustSettings)
    documents: DocumentSettings = Field(default_factory=DocumentSettings)
    messages: MessageSettings = Field(default_factory=MessageSettings)
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    services: dict[str, ServiceSettings] = Field(default_factory=dict)
    access: list[AccessRight] = Field(default_factory=list)
    inbox: InboxSettings = Field(default_factory=InboxSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    state: SecretStr | None = Field(
        default=None,
        description="what the node shares with the other nodes of its bus (seen envelope ids, "
        "requests being executed, Idempotency-Key results, rate limit buckets; with PostgreSQL "
        "also documents and asynchronous results): sqlite:///PATH (relative to this file) or "
        "postgresql://user:pass@host:5432/db; default: state.db beside the node's other files",
    )

    @field_validator("state")
    @classmethod
    def _state_scheme(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith(
            ("sqlite:///", "postgresql://", "postgres://")
        ):
            raise ValueError("state must start with sqlite:/// or postgresql://")
        return v

    def shared_state(self) -> str | None:
        """The PostgreSQL URL of the state when it is shared, else None (local files)."""
        url = "" if self.state is None else self.state.get_secret_value()
        return url if url.startswith(("postgresql://", "postgres://")) else None
    allow_plain_secrets: bool = Field(
        default=False,
        description="accept secrets written in this file (demo only; check-config warns): "
        "otherwise they come from the environment or from 0600 files ({file: PATH})",
    )
    _plain_secrets: list[str] = PrivateAttr(default_factory=list)

    @property
    def plain_secrets(self) -> list[str]:
        """Settings whose secret the file holds in plain YAML (allowed by allow_plain_secrets)."""
        return list(self._plain_secrets)

    @plain_secrets.setter
    def plain_secrets(self, paths: list[str]) -> None:
        self._plain_secrets = list(paths)
    citizens: CitizenSettings | None = Field(
        default=None,
        description="the national identity provider whose ID tokens let a citizen read their "
        "own access report; none: only the portal's token path",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (the file's values arrive as init kwargs).
        return (env_settings, init_settings)

    def transport_url(self) -> str:
        """The transport URL, with ``transport.password`` put in if the URL has none."""
        url = self.transport.url.get_secret_value()
        password = self.transport.password
        if password is None or not url.startswith(("amqp://", "amqps://")):
            return url
        parts = urlsplit(url)
        if parts.password is not None:
            return url
        user = parts.username or "guest"
        host = parts.hostname or "localhost"
        netloc = f"{quote(user, safe='')}:{quote(password.get_secret_value(), safe='')}@{host}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))


def import_object(dotted: str) -> Any:
    module_name, _, attr = dotted.rpartition(".")
    if not module_name:
        raise ValueError(f"{dotted!r} is not a dotted path module.Name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no {attr!r}") from None


def _import_model(dotted: str, base: type[BaseModel]) -> type[BaseModel]:
    obj = import_object(dotted)
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise ValueError(f"{dotted!r} is not a {base.__name__} subclass")
    return obj
