"""Secrets in a configuration file: read from 0600 files, never written in plain YAML.

A configuration file is copied, committed, attached to tickets and read by more people than
the node's keys, so a secret does not belong in it. ``take_secrets(data, base)`` goes through
the parsed YAML of a configuration (before it is validated) and

- replaces every ``{file: PATH}`` written where a secret or a URL goes (a key named
  ``secret``, ``password``, ``passphrase``, ``token`` or ending in ``_secret``, ``_password``,
  ``_passphrase``, ``_token``; or ``url``, ``…_url``, ``wsdl``, ``inbox``) with the file's
  content, its trailing line break removed. ``PATH`` is relative to the configuration's folder.
  The file must be a regular file readable by its owner only (mode 0600 or 0400: no bit for
  group or others); anything else is refused naming the file and its mode, so a secret
  readable by every account on the machine is not used;
- reports every secret written in plain YAML: a non-empty value under a key named as above
  (``audit.secret``, ``node.key_passphrase``, ``transport.password`` …), and any URL that
  carries a password (``amqp://bus:pw@rabbit/``, ``postgresql://u:pw@db/bus``, an adapter's
  database or inbox URL). Such secrets come from the environment instead (``BUS_AUDIT__SECRET``,
  ``BUS_NODE__KEY_PASSPHRASE``, ``BUS_TRANSPORT__PASSWORD``, ``BUS_TRANSPORT__URL`` …) or from
  a file as above. ``bus.config.loader`` refuses them unless the file says
  ``allow_plain_secrets: true`` — which the demo's generated configuration does, and which
  ``check-config`` warns about.

Digests are not secrets: ``api_token_sha256`` and an operator's ``token_sha256`` hold the
SHA-256 of a random token or password, not the token, and are allowed in the file.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MAX_SECRET_BYTES", "SecretProblem", "Secrets", "env_name", "may_hold_secret",
           "take_secrets"]

MAX_SECRET_BYTES = 65_536

_SECRET_KEY = re.compile(r"^(.*_)?(secret|password|passphrase|token)$")
_URL_KEY = re.compile(r"^((.*_)?url|wsdl|inbox)$")
_PASSWORD_IN_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@?#\s]*:[^/@?#\s]*@")


@dataclass(frozen=True)
class SecretProblem:
    path: tuple[str, ...]
    message: str


@dataclass
class Secrets:
    """What ``take_secrets`` found: secrets written in plain YAML, and refused files."""

    plain: list[tuple[str, ...]] = field(default_factory=list)
    problems: list[SecretProblem] = field(default_factory=list)


def env_name(path: tuple[str, ...]) -> str | None:
    """The ``BUS_…`` environment variable of a setting, if it has one."""
    if all(re.fullmatch(r"[a-z0-9_]+", part) for part in path):
        return "BUS_" + "__".join(path).upper()
    return None


def may_hold_secret(path: tuple[str, ...]) -> bool:
    """Whether the setting at ``path`` holds a secret, or a URL that may carry one: its value
    is never quoted back in an error message."""
    return bool(path) and (_is_secret_key(path[-1]) or bool(_URL_KEY.match(path[-1])))


def _is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.match(key)) and not key.endswith("_sha256")


def _read_secret_file(value: Any, base: Path) -> tuple[str | None, str | None]:
    """(content, None) or (None, why not)."""
    if not isinstance(value, str) or not value.strip():
        return None, "{file: PATH}: PATH must name a file"
    path = Path(value) if Path(value).is_absolute() else base / value
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO does not block
    except OSError as exc:
        return None, f"secret file {path}: {exc.strerror or exc}"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, f"secret file {path} is not a regular file"
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            return None, (
                f"secret file {path} has mode {mode:04o}: readable by others than its owner; "
                f"make it 0600 (chmod 600 {path})"
            )
        raw = os.read(fd, MAX_SECRET_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_SECRET_BYTES:
        return None, f"secret file {path} is larger than {MAX_SECRET_BYTES} bytes"
    try:
        text = raw.decode("utf-8").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError:
        return None, f"secret file {path} is not UTF-8 text"
    if not text:
        return None, f"secret file {path} is empty"
    return text, None


def _file_reference(value: Any) -> bool:
    return isinstance(value, dict) and list(value) == ["file"]


def take_secrets(data: dict[str, Any], base: Path) -> Secrets:
    """Put the content of ``{file: PATH}`` secrets into ``data`` and list plain ones (see the
    module docstring). ``data`` is changed in place."""
    found = Secrets()

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for key, value in list(node.items()):
                sub = (*path, str(key))
                name = str(key)
                if _file_reference(value) and (_is_secret_key(name) or _URL_KEY.match(name)):
                    content, why = _read_secret_file(value["file"], base)
                    if why is not None:
                        found.problems.append(SecretProblem(sub, why))
                    node[key] = content
                elif _is_secret_key(name) and value not in (None, "") and not isinstance(
                    value, (dict, list)
                ):
                    found.plain.append(sub)
                else:
                    walk(value, sub)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, (*path, str(i)))
        elif isinstance(node, str) and _PASSWORD_IN_URL.match(node):
            found.plain.append(path)

    walk(data, ())
    return found
