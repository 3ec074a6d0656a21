"""``run_bus.py keys ca init|issue|rotate|revoke|crl|list`` as a CA operator uses them."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from bus.cli.app import app
from signing import load_certificates

ENV = {"BUS_CA_PASSPHRASE": "ca-secret", "BUS_NODE__KEY_PASSPHRASE": "key-secret"}


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None, code: int = 0) -> str:
        result = runner.invoke(app, list(args), env=ENV if env is None else env)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_ca_issue_rotate_revoke(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = run("keys", "ca", "init")
    assert "trust: {ca: var/ca/ca.crt, crl: var/ca/crl.pem}" in out
    out = run("keys", "issue", "cadastre")
    assert "cadastre: {certificate: var/keys/cadastre.crt}" in out
    assert b"ENCRYPTED" in (tmp_path / "var/keys/cadastre.key").read_bytes()
    (first,) = load_certificates(tmp_path / "var/keys/cadastre.crt")

    run("keys", "rotate", "cadastre")
    second, again = load_certificates(tmp_path / "var/keys/cadastre.crt")
    assert again == first and second != first

    out = run("keys", "revoke", f"{first.serial_number:X}", "--reason", "superseded")
    assert f"revoked {first.serial_number:X}" in out
    crl = x509.load_pem_x509_crl((tmp_path / "var/ca/crl.pem").read_bytes())
    assert [r.serial_number for r in crl] == [first.serial_number]

    out = run("keys", "list")
    assert f"{second.serial_number:X}" in out and "cadastre" in out

    out = run("keys", "revoke", "cadastre")  # the member: every certificate still valid
    assert f"revoked {second.serial_number:X}" in out
    crl = x509.load_pem_x509_crl((tmp_path / "var/ca/crl.pem").read_bytes())
    assert {r.serial_number for r in crl} == {first.serial_number, second.serial_number}
    run("keys", "revoke", "cadastre", code=1)  # nothing left to revoke
    run("keys", "crl", "--days", "7")


def test_passphrases_are_required_and_never_taken_from_arguments(run) -> None:  # type: ignore[no-untyped-def]
    assert "BUS_CA_PASSPHRASE" in run("keys", "ca", "init", env={}, code=2)
    run("keys", "ca", "init")
    only_ca = {"BUS_CA_PASSPHRASE": "ca-secret"}
    assert "BUS_NODE__KEY_PASSPHRASE" in run("keys", "issue", "portal", env=only_ca, code=2)
    wrong = {**ENV, "BUS_CA_PASSPHRASE": "guess"}
    run("keys", "issue", "portal", env=wrong, code=1)
    assert "ca-secret" not in run("keys", "--help")


def test_refusals(run) -> None:  # type: ignore[no-untyped-def]
    run("keys", "ca", "init")
    run("keys", "ca", "init", code=1)  # never replaces a CA
    run("keys", "issue", "portal")
    assert "rotate" in run("keys", "issue", "portal", code=1)
    assert "issue" in run("keys", "rotate", "tax", code=1)
    run("keys", "issue", "Not A Member", code=2)
    run("keys", "revoke", "nobody", code=1)
    run("keys", "revoke", "portal", "--reason", "bored", code=2)
