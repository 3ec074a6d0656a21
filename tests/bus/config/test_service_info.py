"""A service's catalogue settings (descriptions in three languages, legal basis, deprecation),
the versioning rules, and the ``citizens:`` section: what loads and what is refused, by path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bus.config.loader import load_settings
from bus.config.service_info import family, successor, version_number
from tests.bus.config.test_settings import MINIMAL, line_of, only_problem, problems_of, write

pytestmark = pytest.mark.usefixtures("no_bus_environment")

V1 = "civil-registry/residence/v1"
V2 = "civil-registry/residence/v2"
DESCRIBED = """\
    description:
      uz: Yashash joyi
      ru: Место жительства
      en: Place of residence
    legal_basis: Law No. ZRU-395
"""


def _with(extra_v1: str = "", *, v2: bool = False, extra_v2: str = "") -> str:
    """MINIMAL with lines added to v1's settings and, with ``v2``, a v2 beside it."""
    text = MINIMAL.replace("    timeout_s: 4\n", "    timeout_s: 4\n" + extra_v1, 1)
    if v2:
        block = MINIMAL.split("services:\n", 1)[1].split("access:\n", 1)[0]
        block = block.replace(V1, V2).replace("    timeout_s: 4\n", "    timeout_s: 4\n" + extra_v2)
        text = text.replace("access:\n", block + "access:\n", 1)
    return text


def test_descriptions_legal_basis_and_dates_load(cfg_dir: Path) -> None:
    text = _with(DESCRIBED + "    deprecated_on: 2027-01-01\n    sunset_on: 2027-07-01\n", v2=True)
    settings = load_settings(write(cfg_dir, text))
    old = settings.services[V1]
    assert old.description is not None and old.description.ru == "Место жительства"
    assert old.legal_basis == "Law No. ZRU-395"
    assert (old.deprecated_on, old.sunset_on) == (dt.date(2027, 1, 1), dt.date(2027, 7, 1))
    assert settings.services[V2].description is None and settings.services[V2].deprecated_on is None


def test_a_description_needs_all_three_languages(cfg_dir: Path) -> None:
    text = _with("    description:\n      uz: Yashash joyi\n      en: Place of residence\n")
    problem = only_problem(write(cfg_dir, text))
    assert problem.path == f"services.{V1}.description.ru"
    assert problem.line == line_of(text, "description:")
    unknown = _with(DESCRIBED.replace("en: Place", "de: Wohnort\n      en: Place"))
    assert only_problem(write(cfg_dir, unknown)).path == f"services.{V1}.description.de"


def test_only_a_version_with_a_successor_may_be_deprecated(cfg_dir: Path) -> None:
    text = _with("    deprecated_on: 2027-01-01\n")
    problem = only_problem(write(cfg_dir, text))
    assert problem.path == f"services.{V1}.deprecated_on"
    assert V2 in problem.message and problem.line == line_of(text, "deprecated_on")
    newest = _with(v2=True, extra_v2="    deprecated_on: 2027-01-01\n")
    assert only_problem(write(cfg_dir, newest)).path == f"services.{V2}.deprecated_on"


def test_a_sunset_comes_after_the_deprecation(cfg_dir: Path) -> None:
    alone = _with("    sunset_on: 2027-07-01\n", v2=True)
    problem = only_problem(write(cfg_dir, alone))
    assert problem.path == f"services.{V1}.sunset_on" and "deprecated_on" in problem.message
    early = _with("    deprecated_on: 2027-07-01\n    sunset_on: 2027-07-01\n", v2=True)
    problem = only_problem(write(cfg_dir, early))
    assert problem.path == f"services.{V1}.sunset_on" and "later" in problem.message
    bad_date = _with("    deprecated_on: next year\n", v2=True)
    assert only_problem(write(cfg_dir, bad_date)).path == f"services.{V1}.deprecated_on"


def test_versions_of_one_service() -> None:
    services = dict.fromkeys([V1, V2, "civil-registry/residence/v10", "other/residence/v3"])
    assert family(V1) == "civil-registry/residence" and version_number(V2) == 2
    assert successor(V1, services) == "civil-registry/residence/v10"
    assert successor("civil-registry/residence/v10", services) is None
    assert successor("other/residence/v3", services) is None


CITIZENS = """\
citizens:
  issuer: https://id.example.uz
  audience: interagency-bus
"""


def test_citizen_settings(cfg_dir: Path) -> None:
    (cfg_dir / "idp-jwks.json").write_text('{"keys": []}')
    settings = load_settings(write(cfg_dir, MINIMAL + CITIZENS + "  jwks_file: idp-jwks.json\n"))
    citizens = settings.citizens
    assert citizens is not None and citizens.jwks_file == cfg_dir / "idp-jwks.json"
    assert citizens.subject_claim == "pinfl" and "none" not in citizens.algorithms
    neither = only_problem(write(cfg_dir, MINIMAL + CITIZENS))
    assert neither.path == "citizens" and "exactly one" in neither.message
    both = MINIMAL + CITIZENS + "  jwks_file: idp-jwks.json\n  jwks_url: https://id.example.uz/j\n"
    assert only_problem(write(cfg_dir, both)).path == "citizens"
    plain = write(cfg_dir, MINIMAL + CITIZENS + "  jwks_url: http://id.example.uz/jwks\n")
    assert only_problem(plain).path == "citizens.jwks_url"
    loopback = MINIMAL + CITIZENS + "  jwks_url: http://127.0.0.1:8999/jwks\n"
    assert load_settings(write(cfg_dir, loopback)).citizens is not None
    missing = write(cfg_dir, MINIMAL + CITIZENS + "  jwks_file: nowhere.json\n")
    assert only_problem(missing).path == "citizens.jwks_file"
    hmac = MINIMAL + CITIZENS + "  jwks_file: idp-jwks.json\n  algorithms: [HS256]\n"
    assert [p.path for p in problems_of(write(cfg_dir, hmac))] == ["citizens.algorithms.0"]
