"""``run_bus.py audit verify`` and ``audit export`` on a SQLite audit log."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from pathlib import Path

from typer.testing import CliRunner

from bus.cli.app import app
from bus.records.audit import AuditRecord, SqliteAuditStore

runner = CliRunner()


def _log(tmp_path: Path, n: int = 5) -> tuple[Path, Path, list[str]]:
    config = tmp_path / "bus.yaml"
    config.write_text("audit:\n  url: sqlite:///audit.db\n")  # relative to the config's folder
    store = SqliteAuditStore(tmp_path / "audit.db")
    try:
        entries = store.append(
            [
                AuditRecord(
                    message_id=str(uuid.uuid4()), correlation=str(uuid.uuid4()), client="portal",
                    provider="cadastre", service="cadastre/property-ownership/v1",
                    user=f"officer-{i}", purpose="housing-subsidy", subject="k" * 64,
                    outcome="ok", side="provider",
                    requested_at="2026-03-01T10:00:00.000000+00:00", response_digest="d" * 64,
                )
                for i in range(n)
            ]
        )
    finally:
        store.close()
    return config, tmp_path / "audit.db", [e.hash for e in entries]


def _raw(db: Path, sql: str) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    conn.execute(sql)
    conn.close()


def test_verify_ok_prints_the_head(tmp_path: Path) -> None:
    config, _, hashes = _log(tmp_path)
    result = runner.invoke(app, ["audit", "verify", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f"OK: 5 entries, head {hashes[-1]}" in result.output
    again = runner.invoke(app, ["audit", "verify", "-c", str(config), "--head", hashes[2]])
    assert again.exit_code == 0, again.output


def test_verify_names_the_first_broken_link(tmp_path: Path) -> None:
    config, db, _ = _log(tmp_path)
    _raw(db, "UPDATE audit SET client = 'someone' WHERE seq = 2")
    _raw(db, "DELETE FROM audit WHERE seq = 4")
    result = runner.invoke(app, ["audit", "verify", "-c", str(config)])
    assert result.exit_code == 1
    assert "BROKEN at entry 2 (edited)" in result.output
    assert "1 entries before it hold" in result.output


def test_verify_with_a_noted_head_catches_a_cut_off_tail(tmp_path: Path) -> None:
    config, db, hashes = _log(tmp_path)
    _raw(db, "DELETE FROM audit WHERE seq = 5")  # the chain alone still holds
    assert runner.invoke(app, ["audit", "verify", "-c", str(config)]).exit_code == 0
    result = runner.invoke(app, ["audit", "verify", "-c", str(config), "--head", hashes[-1]])
    assert result.exit_code == 1
    assert "is not in the chain of 4 entries" in result.output


def test_export_since(tmp_path: Path) -> None:
    config, _, hashes = _log(tmp_path, 3)
    out = tmp_path / "export.jsonl"
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    result = runner.invoke(
        app, ["audit", "export", "-c", str(config), "--since", yesterday, "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["hash"] for line in lines] == hashes
    assert "payload" not in lines[0] and lines[0]["subject"] == "k" * 64
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    none = runner.invoke(app, ["audit", "export", "-c", str(config), "--since", tomorrow])
    assert none.exit_code == 0 and none.output == ""


def test_serve_refuses_to_start_without_the_audit_secret(tmp_path: Path) -> None:
    import yaml

    from bus.cli.app import DEMO_MEMBERS
    from demo.scenario import write_config
    from signing import generate_member_key

    for member in DEMO_MEMBERS:
        generate_member_key(tmp_path / "keys", member)
    path = write_config(
        tmp_path, residence_url="http://127.0.0.1:9", cadastre_db=tmp_path / "c.db",
        token_sha256="0" * 64,
    )
    config = yaml.safe_load(path.read_text())
    del config["audit"]["secret"]
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["serve", "--config", str(path)])
    assert result.exit_code == 2
    assert "audit.secret is not set" in result.output and "BUS_AUDIT__SECRET" in result.output
