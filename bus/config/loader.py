"""Loading a node's configuration file, and saying precisely what is wrong with it.

``load_settings(path)`` reads the YAML file, applies environment overrides, validates everything
(``bus.config.settings.BusSettings``) and cross-checks references (services name known members,
access
rights name known services, schema paths import, adapter options fit their kind, trust files
exist). Any problem raises ``ConfigError`` listing each one with the file, the path inside it,
the line where it can be found, and what was expected. Relative paths are resolved against the
file's folder.

The file itself is read as hostile input (``bus.config.yaml_file``: size, alias expansion, depth,
duplicate keys, an empty file) and its secrets are taken from 0600 files or refused when written
in plain YAML (``bus.config.secrets``), unless ``allow_plain_secrets: true`` (the demo).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from adapters import AdapterConfigError, adapter_kind
from bus.config.secrets import Secrets, env_name, may_hold_secret, take_secrets
from bus.config.settings import BUILTIN_SERVICES, BusSettings
from bus.config.yaml_file import YamlRefused, read_yaml
from bus.core.envelope import SERVICE_PATTERN, provider_of

__all__ = ["ConfigError", "ConfigProblem", "load_settings"]


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
    if may_hold_secret(tuple(str(p) for p in err.get("loc", ()))):
        return msg  # never quote a secret back
    if isinstance(value, (str, int, float, bool)) and len(repr(value)) < 80:
        return f"{msg} (got {value!r})"
    return msg


def load_settings(path: Path | str, *, check_references: bool = True) -> BusSettings:
    """Load, validate and cross-check a configuration file (see the module docstring)."""
    path = Path(path)
    file = str(path)
    try:
        document = read_yaml(path)
    except YamlRefused as exc:
        raise ConfigError(file, [ConfigProblem(exc.path, exc.message, exc.line)]) from None
    raw, index = document.data, document.lines
    if not isinstance(raw, dict):
        raise ConfigError(file, [ConfigProblem("", "expected a mapping at the top level", 1)])
    secrets = take_secrets(raw, path.parent.resolve())
    if secrets.problems:
        raise ConfigError(file, [
            ConfigProblem(".".join(p.path), p.message, _line_for(index, p.path))
            for p in secrets.problems
        ])
    try:
        settings = BusSettings(**raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            problems.append(
                ConfigProblem(".".join(loc), _describe(dict(err)), _line_for(index, loc))
            )
        raise ConfigError(file, problems + _plain(secrets, index, raw)) from None
    plain = [".".join(p) for p in secrets.plain]
    if plain and not settings.allow_plain_secrets:
        raise ConfigError(file, _plain(secrets, index, raw))
    settings.plain_secrets = plain
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


def _plain(secrets: Secrets, index: dict[tuple[str, ...], int], raw: dict[str, Any]
           ) -> list[ConfigProblem]:
    """A problem for each secret written in plain YAML, unless the file allows them."""
    if raw.get("allow_plain_secrets") is True:
        return []
    problems = []
    for p in secrets.plain:
        env = env_name(p)
        where = f"the environment ({env}) or " if env else ""
        problems.append(ConfigProblem(
            ".".join(p),
            f"a secret written in plain YAML: take it from {where}a file readable by the node "
            "only ({file: PATH}, mode 0600); only a demo may say allow_plain_secrets: true",
            _line_for(index, p),
        ))
    return problems


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


def _check_public_url(settings: BusSettings) -> list[ConfigProblem]:
    """A gateway that answers clients prints verify URLs: from the config, never from Host."""
    clients = [code for code, m in settings.members.items() if m.api_token_sha256]
    if clients and settings.documents.public_url is None:
        return [ConfigProblem(
            "documents.public_url",
            "required: the base URL citizens open to verify a document (printed in QR codes), "
            f"e.g. https://bus.example.gov; this node answers clients ({', '.join(clients)}) "
            "and never takes it from a request's Host header",
        )]
    return []


def _check_retention(settings: BusSettings) -> list[ConfigProblem]:
    """An asynchronous result holds the same signed answer as its document: kept no longer."""
    kept, results = settings.documents.retention_days, settings.messages.retention_days
    if kept is not None and (results is None or results > kept):
        return [
            ConfigProblem(
                "messages.retention_days",
                f"must be at most documents.retention_days ({kept}): an asynchronous result "
                "holds the same signed answer as its document",
            )
        ]
    return []


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
    problems += _check_retention(settings)
    problems += _check_public_url(settings)
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
    for name, operator in settings.inbox.operators.items():
        for code in operator.members:
            if code not in settings.members:
                problems.append(ConfigProblem(
                    f"inbox.operators.{name}.members", f"unknown member {code!r}"
                ))
    return problems
