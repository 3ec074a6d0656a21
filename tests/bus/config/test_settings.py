"""Loading the node configuration: validation, line numbers, cross-checks, files that are not
configurations. Environment overrides and paths: ``test_config_env``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bus.config.loader import ConfigError, ConfigProblem, load_settings
from bus.config.settings import BusSettings
from schemas.residence import ResidenceRegistration, ResidenceRegistrationRequest

SERVICE = "civil-registry/residence/v1"

MINIMAL = """\
node:
  hosts: [portal]
  listen: 127.0.0.1:8080
transport:
  url: embedded://var/queues.db
members:
  portal:
    public_key: keys/portal.pub
  civil-registry:
    public_key: keys/civil-registry.pub
services:
  civil-registry/residence/v1:
    request: schemas.residence.ResidenceRegistrationRequest
    response: schemas.residence.ResidenceRegistration
    adapter:
      kind: rest
      base_url: http://127.0.0.1:8102
      path: /api/v2/citizens/{pinfl}/registration
      map: demo.tax.mapping
    timeout_s: 4
    retry:
      attempts: 3
      max_delay_s: 1
access:
  - client: portal
    service: civil-registry/residence/v1
    purpose: [child-benefit, pension]
    fields: [pinfl, address, registered_on]
"""


pytestmark = pytest.mark.usefixtures("no_bus_environment")


def write(directory: Path, text: str, name: str = "bus.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def line_of(text: str, needle: str, start: int = 1) -> int:
    """1-based number of the first line at or after ``start`` containing ``needle``."""
    for number, line in enumerate(text.splitlines(), 1):
        if number >= start and needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the text")


def problems_of(path: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.file == str(path)
    assert info.value.problems
    return info.value.problems


def only_problem(path: Path) -> ConfigProblem:
    problems = problems_of(path)
    assert len(problems) == 1, problems
    return problems[0]


# --- a good file ------------------------------------------------------------------------------


def test_minimal_config_loads(cfg_dir: Path) -> None:
    settings = load_settings(write(cfg_dir, MINIMAL))
    assert isinstance(settings, BusSettings)
    assert settings.node.hosts == ["portal"]
    assert settings.node.listen == "127.0.0.1:8080"
    assert set(settings.members) == {"portal", "civil-registry"}
    service = settings.services[SERVICE]
    assert service.request_model() is ResidenceRegistrationRequest
    assert service.response_model() is ResidenceRegistration
    assert service.adapter.kind == "rest"
    assert service.adapter.options() == {
        "base_url": "http://127.0.0.1:8102",
        "path": "/api/v2/citizens/{pinfl}/registration",
        "map": "demo.tax.mapping",
    }
    assert service.timeout_s == 4
    assert (service.retry.attempts, service.retry.backoff, service.retry.max_delay_s) == (
        3, "exponential", 1)
    (right,) = settings.access
    assert (right.client, right.service) == ("portal", SERVICE)
    assert right.purpose == ["child-benefit", "pension"]
    assert right.fields == ["pinfl", "address", "registered_on"]
    # defaults where the file says nothing
    assert settings.node.workers == 8
    assert settings.log_level == "INFO"


def test_an_empty_file_is_refused_and_a_nearly_empty_one_gives_defaults(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file is empty"):
        load_settings(write(tmp_path, "# nothing here yet\n"))
    settings = load_settings(write(tmp_path, "log_level: INFO\n"))
    assert settings.members == {} and settings.services == {} and settings.access == []
    assert settings.transport_url() == "embedded://" + str(tmp_path.resolve() / "var/queues.db")


def test_transport_url_is_a_secret(cfg_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUS_TRANSPORT__URL", "amqp://bus:hunter2@mq.internal/bus")
    settings = load_settings(write(cfg_dir, MINIMAL))
    assert settings.transport_url() == "amqp://bus:hunter2@mq.internal/bus"
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.transport)


def test_sql_adapter_service_loads(cfg_dir: Path) -> None:
    text = MINIMAL.replace(
        """      kind: rest
      base_url: http://127.0.0.1:8102
      path: /api/v2/citizens/{pinfl}/registration
      map: demo.tax.mapping
""",
        """      kind: sql
      url: sqlite:////var/lib/cadastre.db
      query: "SELECT * FROM registrations WHERE pinfl = :pinfl"
      map: demo.cadastre.mapping.to_response
""",
    )
    settings = load_settings(write(cfg_dir, text))
    assert settings.services[SERVICE].adapter.kind == "sql"
    assert settings.services[SERVICE].adapter.options()["query"].startswith("SELECT")


# --- unknown keys and wrong types -------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("node:", "nod:", "nod"),
        ("  listen:", "  lisen:", "node.lisen"),
        ("      attempts: 3", "      atempts: 3", f"services.{SERVICE}.retry.atempts"),
        ("    timeout_s: 4", "    timeout: 4", f"services.{SERVICE}.timeout"),
        ("    public_key: keys/portal.pub", "    public_kee: keys/portal.pub",
         "members.portal.public_kee"),
        ("    purpose: [child-benefit, pension]", "    purposes: [child-benefit, pension]",
         "access.0.purposes"),
    ],
)
def test_typo_is_an_unknown_key_with_path_and_line(
    cfg_dir: Path, old: str, new: str, path: str
) -> None:
    text = MINIMAL.replace(old, new, 1)
    assert text != MINIMAL
    config = write(cfg_dir, text)
    problems = problems_of(config)
    typo = [p for p in problems if p.path == path]
    assert typo, problems
    assert "unknown key" in typo[0].message
    assert typo[0].line == line_of(text, new.strip())
    rendered = str(ConfigError(str(config), problems))
    assert f"{config}:{typo[0].line}: {path}: unknown key" in rendered


def test_render_names_file_line_and_path() -> None:
    problem = ConfigProblem("node.listen", "bad", 7)
    assert problem.render("/etc/bus.yaml") == "/etc/bus.yaml:7: node.listen: bad"
    assert ConfigProblem("", "bad").render("f.yaml") == "f.yaml: (top level): bad"


@pytest.mark.parametrize(
    ("old", "new", "path", "expected"),
    [
        ("  listen: 127.0.0.1:8080", "  listen: [127.0.0.1, 8080]", "node.listen", "string"),
        ("  listen: 127.0.0.1:8080", "  listen: localhost", "node.listen", "pattern"),
        ("  hosts: [portal]", "  hosts: portal", "node.hosts", "list"),
        ("  hosts: [portal]", "  hosts: [Portal!]", "node.hosts", "member code"),
        ("    timeout_s: 4", "    timeout_s: soon", f"services.{SERVICE}.timeout_s", "number"),
        ("    timeout_s: 4", "    timeout_s: 0", f"services.{SERVICE}.timeout_s",
         "greater than 0"),
        ("      attempts: 3", "      attempts: 0", f"services.{SERVICE}.retry.attempts",
         "greater than or equal to 1"),
        ("      max_delay_s: 1", "      max_delay_s: 1\n      backoff: linear",
         f"services.{SERVICE}.retry.backoff", "'exponential' or 'fixed'"),
        ("  url: embedded://var/queues.db", "  url: http://mq/", "transport.url",
         "embedded://, amqp:// or amqps://"),
        ("    fields: [pinfl, address, registered_on]", "    fields: pinfl",
         "access.0.fields", "list"),
        ("    purpose: [child-benefit, pension]", "    purpose: []", "access.0.purpose",
         "at least 1"),
        ("  - client: portal", "  - client: Portal Office", "access.0.client", "pattern"),
    ],
)
def test_wrong_type_names_the_path_and_what_was_expected(
    cfg_dir: Path, old: str, new: str, path: str, expected: str
) -> None:
    text = MINIMAL.replace(old, new, 1)
    assert text != MINIMAL
    problem = only_problem(write(cfg_dir, text))
    assert problem.path == path
    assert expected in problem.message
    assert problem.line == line_of(text, new.strip().splitlines()[-1].strip())


def test_wrong_type_quotes_a_short_value(cfg_dir: Path) -> None:
    text = MINIMAL.replace("  listen: 127.0.0.1:8080", "  listen: 127.0.0.1:8080\n  workers: many")
    problem = only_problem(write(cfg_dir, text))
    assert problem.path == "node.workers"
    assert "integer" in problem.message and "'many'" in problem.message


def test_a_section_of_the_wrong_shape(cfg_dir: Path) -> None:
    text = MINIMAL.replace("members:\n", "members:\n  - portal\nold_members:\n", 1)
    problems = problems_of(write(cfg_dir, text))
    by_path = {p.path: p for p in problems}
    assert "members" in by_path
    assert "dictionary" in by_path["members"].message
    assert by_path["members"].line == line_of(text, "members:")


def test_every_problem_is_reported_at_once(cfg_dir: Path) -> None:
    text = (MINIMAL.replace("  listen:", "  lisen:")
            .replace("      attempts: 3", "      attempts: 99")
            .replace("log_level", "x") + "log_level: TRACE\n")
    paths = {p.path for p in problems_of(write(cfg_dir, text))}
    assert {"node.lisen", f"services.{SERVICE}.retry.attempts", "log_level"} <= paths


# --- cross-checks -----------------------------------------------------------------------------


def test_missing_public_key_file(cfg_dir: Path) -> None:
    (cfg_dir / "keys" / "civil-registry.pub").unlink()
    problem = only_problem(write(cfg_dir, MINIMAL))
    assert problem.path == "members.civil-registry.public_key"
    assert "does not exist" in problem.message
    assert str(cfg_dir / "keys" / "civil-registry.pub") in problem.message
    assert problem.line == line_of(MINIMAL, "public_key: keys/civil-registry.pub")


def test_cross_checks_can_be_skipped(cfg_dir: Path) -> None:
    (cfg_dir / "keys" / "civil-registry.pub").unlink()
    settings = load_settings(write(cfg_dir, MINIMAL), check_references=False)
    assert "civil-registry" in settings.members


def test_access_right_naming_an_unknown_service(cfg_dir: Path) -> None:
    text = MINIMAL.replace("    service: civil-registry/residence/v1",
                           "    service: civil-registry/residence/v2")
    problem = only_problem(write(cfg_dir, text))
    assert problem.path == "access.0.service"
    assert "unknown service 'civil-registry/residence/v2'" in problem.message
    assert problem.line == line_of(text, "service: civil-registry/residence/v2")


def test_access_right_naming_an_unknown_member(cfg_dir: Path) -> None:
    text = MINIMAL.replace("  - client: portal", "  - client: tax-committee")
    problem = only_problem(write(cfg_dir, text))
    assert problem.path == "access.0.client"
    assert "unknown member 'tax-committee'" in problem.message
    assert problem.line == line_of(text, "client: tax-committee")


def test_access_fields_not_in_the_response_model(cfg_dir: Path) -> None:
    text = MINIMAL.replace("fields: [pinfl, address, registered_on]",
                           "fields: [pinfl, adress, passport_number]")
    problems = problems_of(write(cfg_dir, text))
    assert [p.path for p in problems] == ["access.0.fields", "access.0.fields"]
    assert "'adress'" in problems[0].message and "'passport_number'" in problems[1].message
    assert "address" in problems[0].message  # the valid choices are listed
    assert problems[0].line == line_of(text, "fields:")


def test_node_hosting_an_unknown_member(cfg_dir: Path) -> None:
    text = MINIMAL.replace("hosts: [portal]", "hosts: [portal, archive]")
    problem = only_problem(write(cfg_dir, text))
    assert problem.path == "node.hosts"
    assert "'archive'" in problem.message


def test_service_of_an_unknown_provider(cfg_dir: Path) -> None:
    text = MINIMAL.replace("civil-registry/residence/v1", "cadastre/residence/v1")
    problem = only_problem(write(cfg_dir, text))
    assert problem.path == "services.cadastre/residence/v1"
    assert "'cadastre'" in problem.message


def test_service_id_of_the_wrong_shape(cfg_dir: Path) -> None:
    text = MINIMAL.replace("  civil-registry/residence/v1:", "  civil-registry/residence:")
    problems = problems_of(write(cfg_dir, text))
    assert ConfigProblem(
        "services.civil-registry/residence", "service id must be member/service/vN",
        line_of(text, "  civil-registry/residence:"),
    ) in problems


@pytest.mark.parametrize(
    ("field", "dotted", "expected"),
    [
        ("request", "schemas.residence.NoSuchRequest", "has no 'NoSuchRequest'"),
        ("request", "schemas.nowhere.Request", "cannot import module 'schemas.nowhere'"),
        ("request", "ResidenceRegistrationRequest", "not a dotted path"),
        ("request", "schemas.residence.ResidenceRegistration", "not a SharedRequest subclass"),
        ("response", "schemas.residence.Address", "not a SharedResponse subclass"),
        ("response", "schemas.residence.dt", "not a SharedResponse subclass"),
    ],
)
def test_bad_schema_dotted_path(cfg_dir: Path, field: str, dotted: str, expected: str) -> None:
    old = {"request": "schemas.residence.ResidenceRegistrationRequest",
           "response": "schemas.residence.ResidenceRegistration"}[field]
    text = MINIMAL.replace(f"{field}: {old}\n", f"{field}: {dotted}\n")
    assert text != MINIMAL
    problem = only_problem(write(cfg_dir, text))
    assert problem.path == f"services.{SERVICE}.{field}"
    assert expected in problem.message
    assert problem.line == line_of(text, f"{field}: {dotted}")


# --- adapter options (checked by the adapter kind) --------------------------------------------


def test_unknown_adapter_kind(cfg_dir: Path) -> None:
    text = MINIMAL.replace("      kind: rest", "      kind: carrier-pigeon")
    problem = only_problem(write(cfg_dir, text))
    assert problem.path == f"services.{SERVICE}.adapter.kind"
    assert "unknown adapter kind 'carrier-pigeon'" in problem.message
    assert "rest" in problem.message  # the installed kinds are listed
    assert problem.line == line_of(text, "kind: carrier-pigeon")


def test_rest_adapter_missing_and_unknown_options(cfg_dir: Path) -> None:
    text = MINIMAL.replace("      base_url: http://127.0.0.1:8102\n", "      base_ulr: x\n")
    problems = {p.path: p for p in problems_of(write(cfg_dir, text))}
    assert set(problems) == {f"services.{SERVICE}.adapter.base_url",
                             f"services.{SERVICE}.adapter.base_ulr"}
    assert problems[f"services.{SERVICE}.adapter.base_url"].message == "required key is missing"
    assert "unknown key" in problems[f"services.{SERVICE}.adapter.base_ulr"].message
    assert problems[f"services.{SERVICE}.adapter.base_ulr"].line == line_of(text, "base_ulr")


def test_sql_adapter_refuses_a_writing_query(cfg_dir: Path) -> None:
    text = MINIMAL.replace(
        """      kind: rest
      base_url: http://127.0.0.1:8102
      path: /api/v2/citizens/{pinfl}/registration
      map: demo.tax.mapping
""",
        """      kind: sql
      url: sqlite:////var/lib/cadastre.db
      query: "DELETE FROM registrations WHERE pinfl = :pinfl"
      map: demo.cadastre.mapping.to_response
      pool: 3
""",
    )
    problems = {p.path: p for p in problems_of(write(cfg_dir, text))}
    assert set(problems) == {f"services.{SERVICE}.adapter.query",
                             f"services.{SERVICE}.adapter.pool"}
    assert "SELECT" in problems[f"services.{SERVICE}.adapter.query"].message
    assert problems[f"services.{SERVICE}.adapter.query"].line == line_of(text, "query:")


# --- files that are not configurations --------------------------------------------------------


@pytest.mark.parametrize("text", ["- node\n- members\n", "just a string\n", "42\n"])
def test_non_mapping_yaml(tmp_path: Path, text: str) -> None:
    config = write(tmp_path, text)
    problem = only_problem(config)
    assert problem.message == "expected a mapping at the top level"
    assert problem.line == 1
    assert f"{config}:1:" in problem.render(str(config))


def test_invalid_yaml_syntax_gives_a_line(tmp_path: Path) -> None:
    text = "node:\n  hosts: [portal\n  listen: x\nmembers: {}\n"
    problem = only_problem(write(tmp_path, text))
    assert problem.message.startswith("not valid YAML")
    assert problem.line is not None and 2 <= problem.line <= 4


def test_invalid_yaml_indentation_gives_its_line(tmp_path: Path) -> None:
    text = "node:\n  hosts: []\n  listen: 127.0.0.1:1\n    workers: 2\n"
    problem = only_problem(write(tmp_path, text))
    assert problem.message.startswith("not valid YAML")
    assert problem.line == 4


def test_yaml_tags_are_not_executed(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "node: !!python/object/apply:os.system ['true']\n"))
    assert problem.message.startswith("not valid YAML")
    assert problem.line == 1


def test_unreadable_file(tmp_path: Path) -> None:
    problem = only_problem(tmp_path / "absent.yaml")
    assert "cannot read file" in problem.message
