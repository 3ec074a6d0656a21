"""One settings model for a node, loaded from YAML with ``BUS_`` environment overrides.

``load_settings(path)`` reads the YAML file, applies environment overrides (``BUS_TRANSPORT__URL``,
``BUS_NODE__LISTEN`` …, nested with ``__``), validates everything (``extra="forbid"`` at every
level, so a typo is an error) and cross-checks references (services name known members, access
rights name known services, schema paths import, adapter options fit their kind). Any problem
raises ``ConfigError`` listing each one with the file, the path inside it, the line where it
can be found, and what was expected. Relative paths are resolved against the file's folder.
Nothing else in the bus reads ``os.environ``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from adapters import AdapterConfigError, adapter_kind
from bus.envelope import MEMBER_PATTERN, SERVICE_PATTERN, provider_of
from schemas import SharedRequest, SharedResponse

__all__ = [
    "BUILTIN_SERVICES",
    "CITIZEN_ACCESS_LOG",
    "AccessRight",
    "AdapterSettings",
    "AuditSettings",
    "BusSettings",
    "ConfigError",
    "ConfigProblem",
    "DocumentSettings",
    "MemberSettings",
    "NodeSettings",
    "RateLimitSettings",
    "ServiceSettings",
    "TransportSettings",
    "TrustSettings",
    "import_object",
    "load_settings",
]

_STRICT = ConfigDict(extra="forbid")

# The bus's own service: a citizen's "who read my data" report (``bus.audit_http``). It has no
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


class DocumentSettings(BaseModel):
    """Request numbers and the documents a gateway node returned (``bus.documents``)."""

    model_config = _STRICT
    path: Path | None = Field(
        default=None,
        description="SQLite file of request numbers and documents; default: documents.db next "
        "to the embedded queue file, or beside this config",
    )
    prefix: str = Field(
        default="BUS",
        pattern=r"^[A-Z]{2,8}$",
        description="first part of request numbers; distinct per gateway node",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="base URL printed in QR codes (GET {public_url}/verify/{number}); default: "
        "the URL the document was asked on",
    )


class AuditSettings(BaseModel):
    """The audit log (``bus.audit``): where it is kept and the key of its subject hashes."""

    model_config = _STRICT
    url: SecretStr | None = Field(
        default=None,
        description="sqlite:///PATH (relative to this file; sqlite:////PATH absolute) or "
        "postgresql://user:pass@host:5432/db; default: audit.db next to the embedded queue "
        "file, or beside this config",
    )
    table: str = Field(
        default="bus_audit",
        pattern=r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$",
        description="PostgreSQL table, [schema.]name (created if missing)",
    )
    secret: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="key of the HMAC under which subjects (PINFL, STIR) are stored; required "
        "to run a node (set it from the environment: BUS_AUDIT__SECRET)",
    )
    batch_max: int = Field(
        default=256, ge=1, le=10_000, description="entries written in one transaction at most"
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith(
            ("sqlite:///", "postgresql://", "postgres://")
        ):
            raise ValueError("audit url must start with sqlite:/// or postgresql://")
        return v


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
    timeout_s: float = Field(default=5.0, gt=0, le=300)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    title: str | None = None

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

    def request_model(self) -> type[SharedRequest]:
        return _import_model(self.request, SharedRequest)  # type: ignore[return-value]

    def response_model(self) -> type[SharedResponse]:
        return _import_model(self.response, SharedResponse)  # type: ignore[return-value]


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
    audit: AuditSettings = Field(default_factory=AuditSettings)
    services: dict[str, ServiceSettings] = Field(default_factory=dict)
    access: list[AccessRight] = Field(default_factory=list)

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


# ---------------------------------------------------------------------------------------------
# loading and errors


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    message: str
    line: int | None = None

    def render(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        return f"{where}: {self.path or '(top level)'}: {self.message}"


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` says where and why."""

    def __init__(self, file: str, problems: list[ConfigProblem]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(p.render(file) for p in problems))


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


def _line_index(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path in a YAML document to its 1-based line number."""
    index: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return index

    def walk(node: yaml.Node | None, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                index[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                sub = (*path, str(i))
                index[sub] = item.start_mark.line + 1
                walk(item, sub)

    walk(root, ())
    return index


def _line_for(index: dict[tuple[str, ...], int], loc: tuple[str, ...]) -> int | None:
    for n in range(len(loc), 0, -1):
        if loc[:n] in index:
            return index[loc[:n]]
    return None


def _describe(err: dict[str, Any]) -> str:
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        return "unknown key (not allowed here; check the spelling)"
    if err["type"] == "missing":
        return "required key is missing"
    value = err.get("input")
    if isinstance(value, (str, int, float, bool)) and len(repr(value)) < 80:
        return f"{msg} (got {value!r})"
    return msg


def load_settings(path: Path | str, *, check_references: bool = True) -> BusSettings:
    """Load, validate and cross-check a configuration file (see the module docstring)."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, [ConfigProblem("", f"cannot read file: {exc.strerror}")]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(file, [ConfigProblem("", f"not valid YAML: {exc}", line)]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(file, [ConfigProblem("", "expected a mapping at the top level", 1)])
    index = _line_index(text)
    try:
        settings = BusSettings(**raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            problems.append(
                ConfigProblem(".".join(loc), _describe(dict(err)), _line_for(index, loc))
            )
        raise ConfigError(file, problems) from None
    _resolve_paths(settings, path.parent.resolve())
    if check_references:
        problems = _cross_check(settings)
        for i, p in enumerate(problems):
            problems[i] = ConfigProblem(
                p.path, p.message, _line_for(index, tuple(p.path.split(".")))
            )
        if problems:
            raise ConfigError(file, problems)
    return settings


def _resolve_paths(settings: BusSettings, base: Path) -> None:
    def under(path: Path | str) -> Path:
        return Path(os.path.normpath(base / path))

    if not settings.node.keys_dir.is_absolute():
        settings.node.keys_dir = under(settings.node.keys_dir)
    for member in settings.members.values():
        if member.public_key is not None and not member.public_key.is_absolute():
            member.public_key = under(member.public_key)
        if member.certificate is not None and not member.certificate.is_absolute():
            member.certificate = under(member.certificate)
    for name in ("ca", "crl"):
        path = getattr(settings.trust, name)
        if path is not None and not path.is_absolute():
            setattr(settings.trust, name, under(path))
    url = settings.transport_url()
    if url.startswith("embedded://"):
        rest = url.removeprefix("embedded://")
        if not rest.startswith("/"):
            settings.transport.url = SecretStr(f"embedded://{under(rest)}")
    audit_url = None if settings.audit.url is None else settings.audit.url.get_secret_value()
    if audit_url is None:
        queue = settings.transport_url().removeprefix("embedded://")
        where = (
            Path(queue).with_name("audit.db")
            if settings.transport_url().startswith("embedded://")
            else under("audit.db")
        )
        settings.audit.url = SecretStr(f"sqlite:///{where}")
    elif audit_url.startswith("sqlite:///") and not audit_url.startswith("sqlite:////"):
        settings.audit.url = SecretStr(f"sqlite:///{under(audit_url.removeprefix('sqlite:///'))}")
    documents = settings.documents
    if documents.path is not None and not documents.path.is_absolute():
        documents.path = under(documents.path)
    elif documents.path is None:
        queue = settings.transport_url().removeprefix("embedded://")
        documents.path = (
            Path(queue).with_name("documents.db")
            if settings.transport_url().startswith("embedded://")
            else under("documents.db")
        )


def _check_trust(settings: BusSettings) -> list[ConfigProblem]:
    """Certificates need the CA certificate and its revocation list."""
    problems: list[ConfigProblem] = []
    certified = [code for code, m in settings.members.items() if m.certificate is not None]
    for name in ("ca", "crl"):
        path = getattr(settings.trust, name)
        if path is None and certified:
            problems.append(
                ConfigProblem(
                    f"trust.{name}",
                    f"required when a member names a certificate ({', '.join(certified)})",
                )
            )
        elif path is not None and not path.exists():
            problems.append(
                ConfigProblem(
                    f"trust.{name}",
                    f"file {path} does not exist"
                    " (create the CA with: python run_bus.py keys ca init)",
                )
            )
    return problems


def _cross_check(settings: BusSettings) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for hosted in settings.node.hosts:
        if hosted not in settings.members:
            problems.append(ConfigProblem("node.hosts", f"member {hosted!r} is not under members"))
    for code, member in settings.members.items():
        if member.public_key is not None and not member.public_key.exists():
            problems.append(
                ConfigProblem(
                    f"members.{code}.public_key",
                    f"file {member.public_key} does not exist"
                    " (create keys with: python run_bus.py keys init DIR)",
                )
            )
        if member.certificate is not None and not member.certificate.exists():
            problems.append(
                ConfigProblem(
                    f"members.{code}.certificate",
                    f"file {member.certificate} does not exist"
                    f" (issue one with: python run_bus.py keys issue {code})",
                )
            )
    problems += _check_trust(settings)
    for sid, service in settings.services.items():
        if not re.match(SERVICE_PATTERN, sid):
            problems.append(
                ConfigProblem(f"services.{sid}", "service id must be member/service/vN")
            )
            continue
        if provider_of(sid) not in settings.members:
            problems.append(
                ConfigProblem(
                    f"services.{sid}", f"provider {provider_of(sid)!r} is not under members"
                )
            )
        try:
            adapter_kind(service.adapter.kind).options_model.model_validate(
                service.adapter.options()
            )
        except AdapterConfigError as exc:
            problems.append(ConfigProblem(f"services.{sid}.adapter.kind", str(exc)))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(
                    ConfigProblem(f"services.{sid}.adapter.{loc}", _describe(dict(err)))
                )
    for i, right in enumerate(settings.access):
        if right.client not in settings.members:
            problems.append(ConfigProblem(f"access.{i}.client", f"unknown member {right.client!r}"))
        if right.service in BUILTIN_SERVICES:
            if right.fields is not None:
                problems.append(
                    ConfigProblem(f"access.{i}.fields", f"{right.service} has no fields to limit")
                )
        elif right.service not in settings.services:
            problems.append(
                ConfigProblem(f"access.{i}.service", f"unknown service {right.service!r}")
            )
        elif right.fields is not None:
            known = set(settings.services[right.service].response_model().model_fields)
            for f in right.fields:
                if f not in known:
                    problems.append(
                        ConfigProblem(
                            f"access.{i}.fields",
                            f"{f!r} is not a field of the response (one of {sorted(known)})",
                        )
                    )
    return problems
