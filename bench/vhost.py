"""A virtual host of the run's own on the shared RabbitMQ broker.

Other work uses the same broker at the same time (test suites with their own virtual hosts,
fault tests that close connections or restart it, other benchmark runs). A run on the default
``/`` virtual host shares queue names with every other user of ``/``: one run's clean-up deletes
another's queues, and a node whose queues vanish under it stops. ``run_vhost(url)`` makes a
virtual host for this run (``bench-<pid>-<random>``, ``rabbitmqctl add_vhost``, every right for
the URL's user), yields the URL pointing into it, and deletes it with all its queues at the end.

Without ``rabbitmqctl`` (a broker on another machine) or the right to use it, the run stays on
the URL's own virtual host and ``run_vhost`` says so in the reason it yields.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import quote, unquote, urlsplit, urlunsplit

__all__ = ["run_vhost", "with_vhost"]


def with_vhost(url: str, vhost: str) -> str:
    """``url`` (``amqp://user:pass@host:port/vhost?query``) pointing at ``vhost`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def _ctl(*args: str, timeout_s: float = 60) -> None:
    command = shutil.which("rabbitmqctl")
    if command is None:
        raise FileNotFoundError("rabbitmqctl is not on PATH")
    subprocess.run(
        [command, "-q", *args], capture_output=True, text=True, check=True, timeout=timeout_s
    )


@contextlib.contextmanager
def run_vhost(url: str) -> Iterator[tuple[str, str | None]]:
    """(the URL into a new virtual host, None), or (``url`` itself, why not) if one cannot be
    made; the virtual host is deleted on the way out, with every queue in it."""
    name = f"bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    user = unquote(urlsplit(url).username or "guest")
    try:
        _ctl("add_vhost", name)
        _ctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
    except (OSError, subprocess.SubprocessError) as exc:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            _ctl("delete_vhost", name)
        yield url, f"no virtual host of its own ({type(exc).__name__}), ran on the URL's"
        return
    try:
        yield with_vhost(url, name), None
    finally:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            _ctl("delete_vhost", name, timeout_s=120)
