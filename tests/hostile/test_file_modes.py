"""Every file a node writes is readable by its account only (0600) and every folder it makes is
0700 — under the common umask 022, so the modes come from the bus, not from the environment:
databases and their WAL files, lock files, logs, generated configurations, audit exports, keys,
certificates, the CA's files and the demo's whole state folder."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from bus.cli.app import app
from bus.core.local_db import open_local_db
from bus.ops.logs import configure_logging
from bus.transport.embedded.transport import EmbeddedTransport
from demo.data import PEOPLE
from demo.node_config import write_config
from demo.scenario import PROPERTY, start_stack
from signing import CertificateAuthority, generate_member_key, issue_member
from signing.files import private_dir, private_file, write_private

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def common_umask() -> Iterator[None]:
    """The umask most accounts have: files 0644 and folders 0755 unless the bus says else."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def loose(root: Path) -> list[str]:
    """Everything under ``root`` (itself included) not 0600 (files) or 0700 (folders)."""
    found = []
    for path in [root, *root.rglob("*")]:
        want = 0o700 if path.is_dir() else 0o600
        if mode(path) != want:
            found.append(f"{path.relative_to(root.parent)} {mode(path):04o}")
    return found


def test_the_demo_state_folder_is_private_after_real_exchanges(tmp_path: Path) -> None:
    state = tmp_path / "state"
    stack = start_stack(state, pki=True)
    try:
        configure_logging("INFO", path=state / "node.log")
        r = httpx.post(
            f"{stack.gateway.url}/v1/services/{PROPERTY}", json={"pinfl": PEOPLE[0].pinfl},
            headers={"Authorization": f"Bearer {stack.token}", "X-Bus-User": "officer-17",
                     "X-Bus-Purpose": "housing-subsidy"}, timeout=10,
        )
        assert r.status_code == 200, r.text
        export = CliRunner().invoke(app, [
            "audit", "export", "--since", "2000-01-01T00:00:00", "--config",
            str(stack.config_path), "--output", str(state / "exports" / "audit.jsonl")])
        assert export.exit_code == 0, export.output
    finally:
        stack.stop()
    assert (state / "node.log").stat().st_size > 0
    assert (state / "exports" / "audit.jsonl").stat().st_size > 0
    assert loose(state) == []


def test_a_new_database_and_its_folders_are_private(tmp_path: Path) -> None:
    db = open_local_db(tmp_path / "a" / "b" / "x.db")
    try:
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
        assert loose(tmp_path / "a") == []  # x.db, x.db-wal, x.db-shm
        assert (tmp_path / "a" / "b" / "x.db-wal").exists()
    finally:
        db.close()


def test_an_existing_database_others_could_read_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()
    os.chmod(path, 0o644)
    open_local_db(path).close()
    assert mode(path) == 0o600


def test_the_embedded_queue_file_and_its_lock_are_private(tmp_path: Path) -> None:
    transport = EmbeddedTransport(tmp_path / "var" / "queues.db", node="n1")
    try:
        assert (tmp_path / "var" / "queues.db.lock").exists()
        assert loose(tmp_path / "var") == []
    finally:
        transport.close()


def test_the_log_file_is_private(tmp_path: Path) -> None:
    configure_logging("INFO", path=tmp_path / "logs" / "node.log")
    assert loose(tmp_path / "logs") == []


def test_member_keys_are_private(tmp_path: Path) -> None:
    generate_member_key(tmp_path / "keys", "portal")
    assert {p.name for p in (tmp_path / "keys").iterdir()} == {"portal.key", "portal.pub"}
    assert loose(tmp_path / "keys") == []


def test_the_ca_and_its_certificates_are_private(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path / "ca", b"ca-passphrase-for-tests")
    issue_member(ca, tmp_path / "keys", "portal", passphrase=b"key-passphrase-for-tests")
    ca.revoke(ca.issued()[0].serial_number)  # the CRL written again
    assert (tmp_path / "ca" / "crl.pem").exists() and (tmp_path / "keys" / "portal.crt").exists()
    assert loose(tmp_path / "ca") == [] and loose(tmp_path / "keys") == []


def test_the_generated_demo_config_and_audit_secret_are_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    path = write_config(state, residence_url="http://127.0.0.1:9", cadastre_db=state / "c.db",
                        token_sha256="c" * 64)
    assert path.exists() and (state / "audit.secret").exists()
    assert loose(state) == []


def test_write_private_replaces_a_loose_file_with_a_private_one(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("old")
    assert mode(path) == 0o644
    write_private(path, "new")
    assert path.read_text() == "new" and mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]  # no temporary file left


def test_private_file_narrows_but_private_dir_keeps_an_existing_shared_folder(
    tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    private_dir(shared / "mine" / "deeper")
    assert mode(shared) == 0o755  # not ours to change (think /tmp or /var/lib)
    assert mode(shared / "mine") == mode(shared / "mine" / "deeper") == 0o700
    loose_file = shared / "mine" / "f"
    loose_file.write_text("x")
    private_file(loose_file)
    assert mode(loose_file) == 0o600 and loose_file.read_text() == "x"


def test_the_command_line_sets_a_private_umask_for_what_libraries_write(tmp_path: Path) -> None:
    """``schemas export`` writes with plain ``write_text``: private only thanks to the umask
    ``run_bus.py`` sets before anything else."""
    out = tmp_path / "schemas"
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_bus.py"), "schemas", "export", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert list(out.iterdir()) and loose(out) == []
