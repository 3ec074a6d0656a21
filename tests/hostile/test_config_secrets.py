"""Secrets never live in plain YAML: refused naming the setting and where to put it instead
(never repeating the secret), unless the file says ``allow_plain_secrets: true`` (the demo's,
which ``check-config`` warns about); secret files must be 0600; the environment still works."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bus.cli.app import app
from bus.config.loader import ConfigError, load_settings

pytestmark = pytest.mark.usefixtures("no_bus_environment")

SECRET = "s3cr3t-Value-that-must-not-leak"
SID = "cadastre/property-ownership/v1"


def _service(adapter: dict[str, object]) -> dict[str, object]:
    return {
        "members": {"cadastre": {"public_key": "keys/cadastre.pub"}},
        "services": {SID: {
            "request": "schemas.property.PropertyOwnershipRequest",
            "response": "schemas.property.PropertyOwnership",
            "adapter": adapter,
            "timeout_s": 259200 if adapter["kind"] == "manual" else 5,
        }},
    }


# (case, the config, the path of the plain secret, the environment variable the message names)
PLAIN: list[tuple[str, dict[str, object], str, str | None]] = [
    ("audit-secret", {"audit": {"secret": SECRET}}, "audit.secret", "BUS_AUDIT__SECRET"),
    ("key-passphrase", {"node": {"key_passphrase": SECRET}}, "node.key_passphrase",
     "BUS_NODE__KEY_PASSPHRASE"),
    ("broker-password", {"transport": {"url": "amqp://bus@rabbit/bus", "password": SECRET}},
     "transport.password", "BUS_TRANSPORT__PASSWORD"),
    ("password-in-amqp-url", {"transport": {"url": f"amqp://bus:{SECRET}@rabbit:5672/bus"}},
     "transport.url", "BUS_TRANSPORT__URL"),
    ("password-in-amqps-url", {"transport": {"url": f"amqps://bus:{SECRET}@rabbit/bus"}},
     "transport.url", "BUS_TRANSPORT__URL"),
    ("password-in-audit-url", {"audit": {"url": f"postgresql://bus:{SECRET}@db:5432/bus"}},
     "audit.url", "BUS_AUDIT__URL"),
    ("password-in-sql-adapter-url", _service({
        "kind": "sql", "url": f"postgresql://reader:{SECRET}@db/cadastre",
        "query": "SELECT 1 WHERE :pinfl IS NOT NULL", "map": "demo.cadastre_mapping.to_response"}),
     f"services.{SID}.adapter.url", None),
    ("password-in-manual-inbox-url", _service({
        "kind": "manual", "inbox": f"postgresql://inbox:{SECRET}@db/bus"}),
     f"services.{SID}.adapter.inbox", None),
    ("password-in-rest-base-url", _service({
        "kind": "rest", "base_url": f"https://api:{SECRET}@agency.example.gov", "path": "/x",
        "map": "demo.residence_mapping"}),
     f"services.{SID}.adapter.base_url", None),
    ("password-in-wsdl-url", _service({
        "kind": "soap", "wsdl": f"https://api:{SECRET}@agency.example.gov/ws?wsdl",
        "operation": "Get", "map": "demo.civil_mapping"}),
     f"services.{SID}.adapter.wsdl", None),
    ("a-numeric-secret", {"audit": {"secret": 12345678901234567890}}, "audit.secret",
     "BUS_AUDIT__SECRET"),
]


def _write(directory: Path, config: dict[str, object]) -> Path:
    path = directory / "bus.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("config", "where", "env"), [c[1:] for c in PLAIN], ids=[c[0] for c in PLAIN]
)
def test_a_secret_in_plain_yaml_is_refused_without_repeating_it(
    tmp_path: Path, config: dict[str, object], where: str, env: str | None
) -> None:
    path = _write(tmp_path, config)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, check_references=False)
    problems = [p for p in caught.value.problems if "plain YAML" in p.message]
    assert [p.path for p in problems] == [where], caught.value
    (problem,) = problems
    assert "{file: PATH}" in problem.message
    assert "0600" in problem.message and "allow_plain_secrets" in problem.message
    if env is not None:
        assert env in problem.message
    assert problem.line is not None
    assert SECRET not in str(caught.value) and "12345678901234567890" not in str(caught.value)


@pytest.mark.parametrize(
    ("config", "where"), [(c[1], c[2]) for c in PLAIN if c[0] != "a-numeric-secret"],
    ids=[c[0] for c in PLAIN if c[0] != "a-numeric-secret"],
)
def test_the_demo_allowance_lets_them_through_and_says_which(
    tmp_path: Path, config: dict[str, object], where: str
) -> None:
    path = _write(tmp_path, {**config, "allow_plain_secrets": True})
    settings = load_settings(path, check_references=False)
    assert settings.allow_plain_secrets and settings.plain_secrets == [where]


@pytest.mark.parametrize(
    "config",
    [
        {"transport": {"url": "amqp://bus@rabbit/bus"}},  # a user, no password
        {"transport": {"url": "embedded://var/queues.db"}},
        {"audit": {"url": "postgresql://bus@db:5432/bus"}},
        {"members": {"portal": {"public_key": "k.pub", "api_token_sha256": "a" * 64}},
         "documents": {"public_url": "https://bus.example.gov"}},  # a digest, not a token
        {"inbox": {"operators": {"clerk": {"token_sha256": "b" * 64, "members": ["portal"]}}},
         "members": {"portal": {"public_key": "k.pub"}}},
        {"audit": {"secret": None}},
        {"node": {"key_passphrase": ""}},
    ],
    ids=["user-no-password", "embedded", "pg-no-password", "token-digest", "operator-digest",
         "null-secret", "empty-passphrase"],
)
def test_what_is_not_a_secret_loads(tmp_path: Path, config: dict[str, object]) -> None:
    settings = load_settings(_write(tmp_path, config), check_references=False)
    assert settings.plain_secrets == []


def test_secrets_from_the_environment_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setenv("BUS_AUDIT__SECRET", SECRET)
    monkeypatch.setenv("BUS_TRANSPORT__PASSWORD", SECRET)
    path = _write(tmp_path, {"transport": {"url": "amqp://bus@rabbit/bus"}})
    settings = load_settings(path, check_references=False)
    assert settings.audit.secret is not None
    assert settings.audit.secret.get_secret_value() == SECRET
    assert settings.transport_url() == f"amqp://bus:{SECRET}@rabbit/bus"
    assert settings.plain_secrets == []


def _secret_file(directory: Path, mode: int, content: str = SECRET + "\n",
                 name: str = "audit.secret") -> Path:
    path = directory / name
    path.write_text(content, encoding="utf-8")
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_secret_file_readable_by_its_owner_only_is_read(tmp_path: Path, mode: int) -> None:
    _secret_file(tmp_path, mode)
    path = _write(tmp_path, {"audit": {"secret": {"file": "audit.secret"}}})  # relative: beside
    settings = load_settings(path, check_references=False)
    assert settings.audit.secret is not None
    assert settings.audit.secret.get_secret_value() == SECRET  # the line break taken off
    assert settings.plain_secrets == []


def test_a_secret_file_can_hold_a_url_with_its_password(tmp_path: Path) -> None:
    url = _secret_file(tmp_path, 0o600, f"amqp://bus:{SECRET}@rabbit/bus\n", "broker.url")
    path = _write(tmp_path, {"transport": {"url": {"file": str(url)}}})  # absolute
    assert load_settings(path, check_references=False).transport_url() == (
        f"amqp://bus:{SECRET}@rabbit/bus"
    )


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666, 0o620, 0o610, 0o601])
def test_a_secret_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    secret = _secret_file(tmp_path, mode)
    path = _write(tmp_path, {"node": {"key_passphrase": {"file": "audit.secret"}}})
    with pytest.raises(ConfigError) as caught:
        load_settings(path, check_references=False)
    (problem,) = caught.value.problems
    assert problem.path == "node.key_passphrase" and problem.line == 2
    assert f"{secret}" in problem.message and f"mode {mode:04o}" in problem.message
    assert f"chmod 600 {secret}" in problem.message
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: None, "No such file"),
        (lambda d: (d / "audit.secret").mkdir(mode=0o700), "not a regular file"),
        (lambda d: _secret_file(d, 0o600, ""), "is empty"),
        (lambda d: _secret_file(d, 0o600, "\n"), "is empty"),
        (lambda d: _secret_file(d, 0o600, "x" * 70_000), "larger than"),
    ],
    ids=["missing", "a-folder", "empty", "only-a-line-break", "huge"],
)
def test_an_unusable_secret_file_is_refused(tmp_path: Path, make: object, says: str) -> None:
    make(tmp_path)  # type: ignore[operator]
    path = _write(tmp_path, {"audit": {"secret": {"file": "audit.secret"}}})
    with pytest.raises(ConfigError) as caught:
        load_settings(path, check_references=False)
    (problem,) = caught.value.problems
    assert problem.path == "audit.secret" and says in problem.message


@pytest.mark.parametrize(
    ("config", "where"),
    [({"audit": {"secret": "short-" + SECRET[:5]}}, "audit.secret"),
     ({"transport": {"url": f"ftp://u:{SECRET}@host/"}}, "transport.url"),
     ({"audit": {"url": f"mysql://u:{SECRET}@db/"}}, "audit.url")],
    ids=["too-short-secret", "bad-broker-url", "bad-audit-url"],
)
def test_a_wrong_secret_is_refused_without_quoting_it(
    tmp_path: Path, config: dict[str, object], where: str
) -> None:
    path = _write(tmp_path, {**config, "allow_plain_secrets": True})
    with pytest.raises(ConfigError) as caught:
        load_settings(path, check_references=False)
    assert [p.path for p in caught.value.problems] == [where]
    assert SECRET[:5] not in str(caught.value)


def test_file_is_only_read_where_a_secret_or_url_goes(tmp_path: Path) -> None:
    _secret_file(tmp_path, 0o600)
    path = _write(tmp_path, {"node": {"name": {"file": "audit.secret"}}})
    with pytest.raises(ConfigError) as caught:
        load_settings(path, check_references=False)
    assert [p.path for p in caught.value.problems] == ["node.name"]
    assert SECRET not in str(caught.value)


def test_check_config_warns_about_the_allowance(tmp_path: Path) -> None:
    allowed = _write(tmp_path, {"audit": {"secret": SECRET}, "allow_plain_secrets": True})
    result = CliRunner().invoke(app, ["check-config", str(allowed)])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "allow_plain_secrets: true" in result.output
    assert "audit.secret" in result.output and "demo only" in result.output.lower()
    assert SECRET not in result.output
    clean = _write(tmp_path, {"log_level": "INFO"})
    quiet = CliRunner().invoke(app, ["check-config", str(clean)])
    assert quiet.exit_code == 0 and "warning" not in quiet.output


def test_check_config_refuses_a_plain_secret_in_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, {"audit": {"secret": SECRET}})
    result = CliRunner().invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    assert f"{path}:" in result.output and "audit.secret" in result.output
    assert SECRET not in result.output and "Traceback" not in result.output


def test_the_example_and_the_demo_configs_keep_no_plain_secret(tmp_path: Path) -> None:
    from demo.node_config import CONFIG_TEMPLATE, write_config

    example = load_settings(CONFIG_TEMPLATE, check_references=False)
    assert not example.allow_plain_secrets and example.plain_secrets == []
    demo = write_config(tmp_path, residence_url="http://127.0.0.1:9",
                        cadastre_db=tmp_path / "c.db", token_sha256="c" * 64)
    settings = load_settings(demo, check_references=False)
    assert settings.allow_plain_secrets and settings.plain_secrets == []  # the audit secret: file
    assert settings.audit.secret is not None and len(settings.audit.secret.get_secret_value()) > 16
    with_key = write_config(tmp_path, residence_url="http://127.0.0.1:9",
                            cadastre_db=tmp_path / "c.db", token_sha256="c" * 64,
                            key_passphrase="demo-only")
    assert load_settings(with_key, check_references=False).plain_secrets == ["node.key_passphrase"]
