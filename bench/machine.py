"""What a benchmark run records about where it ran, and whether the broker can be used.

The facts ``bench/RESULTS.md`` shows beside the figures (``bench.report.Machine``): cores
available to the run (``nproc``), the CPU model, the versions of the libraries and of RabbitMQ,
the commit measured and which source files differed from it (``code_state``). ``rabbit_problem``
says why the RabbitMQ rows cannot run (or ``None``) and the broker's version;
``wait_for_broker`` waits for the broker to come back (others' fault tests restart it).
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pika

__all__ = ["code_state", "cpu_model", "nproc", "rabbit_problem", "versions", "wait_for_broker"]


def rabbit_problem(url: str) -> tuple[str | None, str]:
    """Why RabbitMQ rows cannot run (None if they can), and the broker's version."""
    try:
        import bus.transport.rabbitmq.transport  # noqa: F401
    except ImportError as exc:
        return f"bus.transport.rabbitmq.transport is not importable ({exc})", ""
    params = pika.URLParameters(url)
    params.socket_timeout = 5
    params.stack_timeout = 10
    params.blocked_connection_timeout = 5
    try:
        connection = pika.BlockingConnection(params)
    except Exception as exc:
        return f"RabbitMQ at {params.host}:{params.port} unusable: {type(exc).__name__}: {exc}", ""
    try:
        props = connection._impl.server_properties
        raw = props.get("version", b"")
        broker = raw.decode() if isinstance(raw, bytes) else str(raw)
    finally:
        connection.close()
    return None, broker


def server_stack() -> str:
    """The HTTP protocol and event loop of every server of the bench, floors included, as
    ``run_bus.py serve`` runs them: the gateway's h11 protocol with its limits
    (``bus.gateway.server``) and uvloop when importable (the ``fast`` extra), else asyncio's."""
    loop = "uvloop" if _importable("uvloop") else "the asyncio loop"
    return f"the gateway's guarded h11 protocol (bus.gateway.server) and {loop}"


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def versions(broker: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for dist in ("fastapi", "uvicorn", "httpx", "pika", "pydantic", "cryptography", "rfc8785"):
        with contextlib.suppress(PackageNotFoundError):
            out[dist] = version(dist)
    for optional in ("uvloop", "httptools"):
        try:
            out[optional] = version(optional)
        except PackageNotFoundError:
            out[optional] = "not installed"
    if broker:
        out["RabbitMQ"] = broker
    return out


def code_state() -> str:
    """The commit measured, and the source files that differed from it (others' work)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True
        ).stdout.splitlines()
    except OSError:
        return ""
    if not head:
        return ""
    changed = sorted(
        line[3:]
        for line in status
        if line[3:].endswith(".py") and not line[3:].startswith(("tests/", "bench/"))
    )
    if not changed:
        return f"commit {head}"
    return f"commit {head} with uncommitted changes to {', '.join(f'`{c}`' for c in changed)}"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def wait_for_broker(url: str, timeout_s: float = 60.0) -> bool:
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        if rabbit_problem(url)[0] is None:
            return True
        time.sleep(2)
    return False
