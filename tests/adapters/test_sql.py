"""The sql adapter against the demo cadastre, in SQLite and in the live PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError

from adapters import (
    AdapterConfigError,
    AdapterContext,
    Deadline,
    NoData,
    ProviderError,
    ProviderInvalidAnswer,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    answering,
    build_adapter,
)
from adapters.base import Adapter
from adapters.sql import SqlAdapter
from demo.cadastre import QUERY, create_database, create_database_postgres
from demo.data import AZIZ, BOBUR, DILNOZA, JASUR, MALIKA, UNKNOWN_PINFL, expected_property
from schemas import PropertyOwnership, PropertyOwnershipRequest, SharedRequest

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
MAP = "demo.cadastre_mapping.to_response"
CONTEXT = AdapterContext(
    service="cadastre/property-ownership/v1",
    request_model=PropertyOwnershipRequest,
    response_model=PropertyOwnership,
)
SLOW_QUERY = """
WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 500000000)
SELECT count(*) AS n FROM c WHERE CAST(:pinfl AS TEXT) <> ''
"""


def no_rows_is_no_data(rows: list[dict[str, Any]], request: SharedRequest) -> PropertyOwnership:
    """A mapping (used through ``map``) for a registry where no rows means an unknown person."""
    if not rows:
        raise NoData("the cadastre does not know this person")
    from demo.cadastre_mapping import to_response
    return to_response(rows, request)  # type: ignore[arg-type]


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[str, str]]:
    """(backend name, URL of a cadastre database loaded with the demo data)."""
    if request.param == "sqlite":
        path = create_database(tmp_path_factory.mktemp("cadastre") / "cadastre.db")
        yield "sqlite", f"sqlite:///{path}"
        return
    name = f"bus_test_cadastre_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            create_database_postgres(f"{PG_SERVER}/{name}")
            yield "postgres", f"{PG_SERVER}/{name}"
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def url(backend: tuple[str, str]) -> str:
    return backend[1]


def make(url: str, query: str = QUERY, map: str = MAP, **options: Any) -> Adapter:
    return build_adapter("sql", {"url": url, "query": query, "map": map, **options}, CONTEXT)


def call(adapter: Adapter, pinfl: str, seconds: float = 5.0) -> Any:
    return adapter.call(PropertyOwnershipRequest(pinfl=pinfl), Deadline.after(seconds))


def failure(adapter: Adapter, pinfl: str, raised: list[ProviderError], seconds: float = 5.0
            ) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        call(adapter, pinfl, seconds)
    raised.append(info.value)
    return info.value


@pytest.fixture
def adapter(url: str) -> Iterator[Adapter]:
    built = make(url)
    yield built
    built.close()


@pytest.mark.parametrize("who", [AZIZ, DILNOZA, JASUR, BOBUR], ids=lambda p: p.given_name)
def test_an_owner_gets_their_current_properties(adapter: Adapter, who: Any) -> None:
    answer = call(adapter, who.pinfl)
    assert isinstance(answer, PropertyOwnership)
    assert answer == expected_property(who.pinfl)
    assert answer.properties


def test_shares_areas_and_kinds_are_translated(adapter: Adapter) -> None:
    house, land = call(adapter, BOBUR.pinfl).properties
    assert (house.kind, str(house.area_m2), house.share) == ("house", "143.80", "1/1")
    assert (land.kind, str(land.registered_on)) == ("land", "2009-11-03")
    assert call(adapter, AZIZ.pinfl).properties[0].share == "1/2"


@pytest.mark.parametrize("pinfl", [MALIKA.pinfl, UNKNOWN_PINFL], ids=["sold-all", "unknown"])
def test_a_person_with_no_property_gets_an_empty_list(adapter: Adapter, pinfl: str) -> None:
    assert call(adapter, pinfl) == PropertyOwnership(pinfl=pinfl, properties=[])


def test_the_mapping_may_say_no_data(url: str, raised: list[ProviderError]) -> None:
    adapter = make(url, map=f"{__name__}.no_rows_is_no_data")
    try:
        assert call(adapter, AZIZ.pinfl) == expected_property(AZIZ.pinfl)
        assert type(failure(adapter, UNKNOWN_PINFL, raised)) is NoData
    finally:
        adapter.close()


def test_rows_that_do_not_fit_are_an_invalid_answer(url: str, raised: list[ProviderError]) -> None:
    query = QUERY.replace("o.kind_code,", "")
    adapter = make(url, query=query)
    try:
        # a KeyError in kind_code
        assert type(failure(adapter, AZIZ.pinfl, raised)) is ProviderInvalidAnswer
    finally:
        adapter.close()
    adapter = make(url, query=QUERY.replace("o.area", "0 AS area"))
    try:
        # area must be > 0
        assert type(failure(adapter, AZIZ.pinfl, raised)) is ProviderInvalidAnswer
    finally:
        adapter.close()
    adapter = make(url, query=QUERY.replace("r.share_num,", "r.share_num / 0 AS share_num,"))
    try:
        # division by zero: PostgreSQL refuses it, SQLite answers NULL, which cannot be mapped
        failed = type(failure(adapter, AZIZ.pinfl, raised))
        assert failed in (ProviderRejected, ProviderInvalidAnswer)
    finally:
        adapter.close()


@pytest.mark.parametrize(
    "query",
    [
        "UPDATE owners SET full_name = 'x' WHERE pinfl = :pinfl",
        "DELETE FROM rights",
        "SELECT 1 AS n WHERE :pinfl = ''; DELETE FROM rights",
        "/* SELECT */ INSERT INTO owners (id, pinfl, full_name) VALUES (99, :pinfl, 'x')",
        "-- SELECT\nDROP TABLE rights",
        "SELECTED_ROWS",
        "",
        "SELECT * FROM owners WHERE pinfl = :stir",
    ],
)
def test_anything_but_one_select_is_refused_at_config_time(url: str, query: str) -> None:
    with pytest.raises(AdapterConfigError):
        make(url, query=query)


def test_a_trailing_semicolon_and_comments_are_fine(url: str) -> None:
    adapter = make(url, query=f"-- the demo query\n{QUERY};\n")
    try:
        assert call(adapter, AZIZ.pinfl) == expected_property(AZIZ.pinfl)
    finally:
        adapter.close()


def test_the_connection_itself_is_read_only(adapter: Adapter, backend: tuple[str, str]) -> None:
    assert isinstance(adapter, SqlAdapter)
    with adapter.engine.connect() as conn, pytest.raises(DBAPIError) as info:
        conn.execute(text("UPDATE owners SET full_name = 'changed'"))
        conn.commit()
    if backend[0] == "sqlite":
        assert "readonly" in str(info.value.orig)  # the file was opened with mode=ro
    else:
        assert getattr(info.value.orig, "sqlstate", None) == "25006"  # read-only transaction
    assert call(adapter, AZIZ.pinfl) == expected_property(AZIZ.pinfl)


def test_a_writing_cte_is_refused_by_the_database(url: str, raised: list[ProviderError]) -> None:
    query = ("WITH gone AS (DELETE FROM rights RETURNING object_id) "
             "SELECT count(*) AS n FROM gone WHERE CAST(:pinfl AS TEXT) <> ''")
    adapter = make(url, query=query)
    try:
        assert type(failure(adapter, AZIZ.pinfl, raised)) is ProviderRejected
    finally:
        adapter.close()
    checker = make(url)
    try:
        assert call(checker, AZIZ.pinfl) == expected_property(AZIZ.pinfl)
    finally:
        checker.close()


def test_a_missing_database_is_unavailable(backend: tuple[str, str], tmp_path: Path,
                                           raised: list[ProviderError]) -> None:
    if backend[0] == "sqlite":
        missing = f"sqlite:///{tmp_path / 'no-such-cadastre.db'}"
    else:
        missing = f"{PG_SERVER}/bus_test_no_such_database"
    adapter = make(missing)
    try:
        error = failure(adapter, AZIZ.pinfl, raised)
    finally:
        adapter.close()
    assert type(error) is ProviderUnavailable and error.transient
    assert not (tmp_path / "no-such-cadastre.db").exists()  # read-only: not even created


def test_a_slow_query_is_stopped_at_the_deadline(url: str, raised: list[ProviderError]) -> None:
    adapter = make(url, query=SLOW_QUERY)
    try:
        started = time.monotonic()
        error = failure(adapter, AZIZ.pinfl, raised, seconds=0.3)
        elapsed = time.monotonic() - started
        assert type(error) is ProviderTimeout
        assert elapsed < 1.0
        # the pooled connection is usable afterwards, with no deadline left over
        reader = make(url)
        try:
            assert call(reader, AZIZ.pinfl) == expected_property(AZIZ.pinfl)
        finally:
            reader.close()
    finally:
        adapter.close()


def test_an_expired_deadline_does_not_query(adapter: Adapter, raised: list[ProviderError]) -> None:
    assert type(failure(adapter, AZIZ.pinfl, raised, seconds=0)) is ProviderTimeout


def test_other_databases_are_refused_at_config_time() -> None:
    with pytest.raises(AdapterConfigError):
        make("mysql://root@127.0.0.1/cadastre")
    with pytest.raises(AdapterConfigError):
        make("sqlite://")


def test_the_query_names_the_bus_message_id_in_a_comment(adapter: Adapter) -> None:
    """What the database's statement log shows: the bus message id, as an SQL comment."""
    statements: list[str] = []
    engine = adapter.engine  # type: ignore[attr-defined]
    record = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", record)
    try:
        with answering("3f1c2a9e-3333-4000-8000-000000000003"):
            answer = call(adapter, AZIZ.pinfl)
        call(adapter, AZIZ.pinfl)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert answer == expected_property(AZIZ.pinfl)  # the comment changes nothing else
    queries = [s for s in statements if "FROM" in s.upper()]
    assert queries[0].startswith("/* bus-message-id 3f1c2a9e-3333-4000-8000-000000000003 */ ")
    assert "bus-message-id" not in queries[1]
