"""Adapter kind ``manual``: where it files requests, and its configuration (the inbox itself:
``tests/contract/test_operator_inbox.py``)."""

from __future__ import annotations

import stat
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters import AdapterContext, build_adapter
from bus.config.loader import ConfigError, load_settings
from bus.config.settings import ServiceSettings
from bus.inbox.manual import ManualAdapter
from schemas import BirthCertificate, BirthCertificateRequest
from tests.contract.test_operator_inbox import PINFL, ticket


def test_the_adapter_files_into_the_node_folder_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    adapter = build_adapter("manual", {"instructions": "the 1990 books"}, AdapterContext(
        "state-archive/archival-birth-record/v1", BirthCertificateRequest, BirthCertificate,
        data_dir=tmp_path))
    assert isinstance(adapter, ManualAdapter)
    adapter.file(BirthCertificateRequest(pinfl=PINFL), ticket())
    path = tmp_path / "inbox.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [t.request for t in adapter.inbox.tasks()] == [{"pinfl": PINFL, "number": None}]
    adapter.close()


def _service(**overrides: object) -> ServiceSettings:
    return ServiceSettings.model_validate({
        "request": "schemas.civil.BirthCertificateRequest",
        "response": "schemas.civil.BirthCertificate",
        "adapter": {"kind": "manual"},
        **overrides,
    })


def test_a_manual_service_must_wait_for_a_person() -> None:
    with pytest.raises(ValidationError, match="waits for a person"):
        _service(timeout_s=5)
    assert _service(timeout_s=259200).async_only
    rest = _service(adapter={"kind": "rest"}, timeout_s=5)
    assert not rest.async_only and _service(adapter={"kind": "rest"}, timeout_s=3600).async_only
    with pytest.raises(ValidationError):
        _service(timeout_s=31 * 86400)  # at most 30 days


def test_an_operator_of_an_unknown_agency_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bus.yaml"
    path.write_text(textwrap.dedent("""\
        node: {hosts: []}
        transport: {url: "embedded://q.db"}
        inbox:
          operators:
            archivist:
              token_sha256: 83c5a360267dab042567bcc47d07a91ea08524c4f7010dc7bc032aa9e7a97385
              members: [state-archive]
        """))
    with pytest.raises(ConfigError) as info:
        load_settings(path, check_references=True)
    assert "inbox.operators.archivist.members: unknown member 'state-archive'" in str(info.value)


def test_an_application_is_filed_once_by_the_field_named_in_dedupe_on(tmp_path: Path) -> None:
    import uuid

    from adapters import AdapterConfigError, ProviderRejected
    from schemas import PermanentRegistrationApplication, PermanentRegistrationDecision

    service = "residence-registry/permanent-registration/v1"
    context = AdapterContext(service, PermanentRegistrationApplication,
                             PermanentRegistrationDecision, data_dir=tmp_path)
    with pytest.raises(AdapterConfigError, match="'number' is not a field"):
        build_adapter("manual", {"dedupe_on": "number"}, context)
    adapter = build_adapter("manual", {"dedupe_on": "application_id"}, context)
    assert isinstance(adapter, ManualAdapter)
    application = PermanentRegistrationApplication.model_validate({
        "application_id": str(uuid.uuid4()), "pinfl": PINFL, "ground": "ownership",
        "address": {"region": "r", "district": "d", "street": "s", "house": "1"}})
    adapter.file(application, ticket("first"))
    adapter.file(application, ticket("first"))  # delivered again: the same task
    with pytest.raises(ProviderRejected, match="filed already, as request first"):
        adapter.file(application, ticket("retry"))
    other = application.model_copy(update={"application_id": uuid.uuid4()})
    adapter.file(other, ticket("other"))
    assert sorted(t.id for t in adapter.inbox.tasks()) == ["first", "other"]
    adapter.close()
