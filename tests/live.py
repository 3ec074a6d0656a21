"""The live servers the marked tests use, with this run kept apart from every other run.

Other runs (another checkout's suite, a benchmark) may use the same RabbitMQ broker at the same
time. Each pytest process gets a virtual host of its own, ``AMQP_URL`` points into it, and the
whole virtual host (queues, exchanges, messages) is deleted when the session ends, so no run
takes or deletes another run's messages. PostgreSQL tests make a schema of their own each.

The broker is 127.0.0.1:5672 unless ``BUS_TEST_BROKER`` names another (``host:port``, user
``guest``); ``rabbitmqctl`` (vhosts, the chaos run's broker restart) talks to the node that
``RABBITMQ_NODENAME`` names, as it always does — set both to use a private broker::

    BUS_TEST_BROKER=127.0.0.1:5673 RABBITMQ_NODENAME=chaos@localhost .venv/bin/python -m pytest ...

``create_vhost`` and ``delete_vhost`` are called by ``tests/conftest.py`` around a session that
runs ``rabbitmq`` tests; module constants such as ``AMQP_URL`` are plain strings, cheap to import.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

# Fixed once per pytest process; a run's subprocesses (nodes under test) get it through config.
VHOST = os.environ.get("BUS_TEST_VHOST") or f"test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
# Another broker (host:port, guest/guest), e.g. a private one for a run that restarts it; its
# node for rabbitmqctl is the environment's RABBITMQ_NODENAME, which rabbitmqctl reads itself.
BROKER = os.environ.get("BUS_TEST_BROKER") or "127.0.0.1:5672"
AMQP_URL = f"amqp://guest:guest@{BROKER}/{VHOST}"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def rabbitmqctl(*args: str, vhost: bool = False, timeout_s: float = 60) -> str:
    """Run ``rabbitmqctl -q ARGS`` (with ``-p VHOST`` first when ``vhost``) and return stdout."""
    command = [shutil.which("rabbitmqctl") or "rabbitmqctl", "-q"]
    if vhost:
        command += ["-p", VHOST]
    done = subprocess.run(
        [*command, *args], capture_output=True, text=True, check=True, timeout=timeout_s
    )
    return done.stdout


def create_vhost() -> None:
    """Create this run's virtual host and give the ``guest`` user every right on it."""
    rabbitmqctl("add_vhost", VHOST)
    rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")


def delete_vhost() -> None:
    """Delete this run's virtual host with everything in it (a vhost that is gone is fine)."""
    subprocess.run(
        [shutil.which("rabbitmqctl") or "rabbitmqctl", "-q", "delete_vhost", VHOST],
        capture_output=True,
        timeout=120,
        check=False,
    )


def pg_schema(prefix: str) -> contextlib.AbstractContextManager[str]:
    """A fresh schema in the live PostgreSQL for one test: yields a URL whose tables land in it
    (``search_path``), and drops the schema with everything in it afterwards."""
    return _pg_schema(prefix)


@contextlib.contextmanager
def _pg_schema(prefix: str) -> Iterator[str]:
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as db:
            db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
