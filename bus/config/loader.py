"""Loading a node's configuration file, and saying precisely what is wrong with it.

``load_settings(path)`` reads the YAML file, applies environment overrides, validates everything
(``bus.config.settings.BusSettings``) and cross-checks references (services name known members,
access
rights name known services, schema paths import, adapter options fit their kind, trust files
exist). Any problem raises ``ConfigError`` listing each one with the file, the path inside it,
the line where it can be found, and what was expected. Relative paths are resolved against the
file's folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, ValidationError

from adapters import AdapterConfigError, adapter_kind
from bus.config.settings import BUILTIN_SERVICES, BusSettings
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
    state = None if settings.state is None else settings.state.get_secret_value()
    if state is not None and state.startswith("sqlite:///") and not state.startswith(
        "sqlite:////"
    ):
        settings.state = SecretStr(f"sqlite:///{under(state.removeprefix('sqlite:///'))}")


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
