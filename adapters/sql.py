"""The ``sql`` adapter: a read-only, parameterised query against an agency's database.

Talks to SQLite or PostgreSQL through SQLAlchemy 2; one engine (with its connection pool) per
adapter, made in the constructor and disposed of by ``close()``.

Options (the keys under ``adapter:`` with ``kind: sql``)::

    url                 str    required: "sqlite:////abs/path/agency.db" or
                               "postgresql+psycopg://user@host:5432/db" ("postgresql://" means
                               psycopg). A relative SQLite path is taken from the working
                               directory: the bus resolves config paths before it builds adapters.
    query               str    required: one SELECT (or WITH … SELECT) statement whose :named
                               parameters are fields of the request model
    map                 str    required: dotted path of a function
                               ``(rows: list[dict[str, Any]], request) -> SharedResponse | dict``;
                               no rows is the mapping's to judge (an empty list, or raise NoData)
    pool_size           int    default 5
    connect_timeout_s   float  default 5; also the longest wait for a free pooled connection
    probe               bool   default false; the node's readiness runs "SELECT 1" on the database

Read-only, three times over: the query must be a single SELECT/WITH statement (checked when the
config is loaded, after stripping comments; a ";" anywhere but at the end is refused, even inside
a string literal); SQLite files are opened with ``mode=ro``; PostgreSQL sessions start with
``default_transaction_read_only=on`` and every call runs ``SET TRANSACTION READ ONLY``.
Because of ``mode=ro``, a SQLite database in WAL mode needs its ``-shm`` file to exist.

Every query starts with an SQL comment naming the bus message id of the request it answers,
``/* bus-message-id 3f1c…-… */ SELECT …`` (``adapters.base.message_id``; a UUID, so nothing
can close the comment early): the database's statement log (PostgreSQL ``log_statement``,
``pg_stat_activity``) shows it, and a request the bus delivers again comes with the same id.

Deadline: PostgreSQL runs ``SET LOCAL statement_timeout`` with the remaining time; SQLite gets a
progress handler that interrupts the statement once the deadline has passed and a busy timeout.

Errors (all translated in ``_translate``)::

    cannot connect, database missing/locked/busy, pool exhausted  -> ProviderUnavailable
    statement timeout or interrupt at the deadline              -> ProviderTimeout
    the database refuses the statement (syntax, no such table,
    read-only violation, bad parameter)                         -> ProviderRejected
    mapping or validation failure                               -> ProviderInvalidAnswer
    NoData (or any adapter error) raised by the mapping          -> passed on as is

Messages never quote parameters or rows (the engine hides parameters, and errors that could echo
them are not chained), so no personal identifier reaches an exception or a log line.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator
from sqlalchemy import Connection, Engine, TextClause, create_engine, make_url, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import QueuePool

from adapters.base import (
    AdapterConfigError,
    AdapterContext,
    AdapterOptions,
    Deadline,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    message_id,
)
from adapters.mapping import load_function, mapped_answer
from schemas import SharedRequest, SharedResponse

__all__ = ["SqlAdapter", "SqlOptions", "check_read_only_query"]

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_READ_STATEMENT = re.compile(r"(SELECT|WITH)\b", re.IGNORECASE)
_SQLITE_UNAVAILABLE = (
    "SQLITE_CANTOPEN",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_IOERR",
    "SQLITE_NOTADB",
    "SQLITE_CORRUPT",
    "SQLITE_PERM",
    "SQLITE_AUTH",
)


def check_read_only_query(query: str) -> str:
    """Return ``query`` if it is one SELECT/WITH statement, else raise ``ValueError``."""
    bare = _COMMENTS.sub(" ", query).strip().rstrip(";").strip()
    if ";" in bare:
        raise ValueError("the query must be a single statement (no ';' inside)")
    if not _READ_STATEMENT.match(bare):
        first = bare.split(None, 1)[0][:20] if bare else "nothing"
        raise ValueError(f"the query must start with SELECT or WITH, not {first!r}")
    return query


class SqlOptions(AdapterOptions):
    url: str
    query: str
    map: str = Field(pattern=r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+$")
    pool_size: int = Field(default=5, ge=1)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    probe: bool = False

    @field_validator("query")
    @classmethod
    def _read_only(cls, value: str) -> str:
        return check_read_only_query(value)


def _translate(exc: Exception, service: str) -> ProviderError | None:
    """The one place where SQLAlchemy/DBAPI failures become adapter errors (None: not one)."""
    if isinstance(exc, ProviderError):
        return exc
    name = type(exc).__name__
    if isinstance(exc, sa_exc.TimeoutError):
        return ProviderUnavailable(f"{service}: no free database connection ({name})")
    if isinstance(exc, sa_exc.DBAPIError):
        orig = exc.orig
        sqlstate = getattr(orig, "sqlstate", None) or ""
        sqlite_name = getattr(orig, "sqlite_errorname", None) or ""
        detail = sqlstate or sqlite_name or type(orig).__name__
        if sqlstate == "57014" or sqlite_name == "SQLITE_INTERRUPT":
            return ProviderTimeout(f"{service}: the query outlived the deadline ({detail})")
        if (
            exc.connection_invalidated
            or isinstance(exc, sa_exc.InterfaceError)
            or sqlite_name.startswith(_SQLITE_UNAVAILABLE)
            or (isinstance(exc, sa_exc.OperationalError) and not sqlite_name)
        ):
            return ProviderUnavailable(f"{service}: the database is unavailable ({detail})")
        return ProviderRejected(f"{service}: the database refused the query ({detail})")
    if isinstance(exc, sa_exc.SQLAlchemyError | sqlite3.Error | OSError):
        return ProviderUnavailable(f"{service}: the database is unavailable ({name})")
    return None


def _make_engine(options: SqlOptions, service: str) -> Engine:
    url = make_url(options.url)
    common: dict[str, Any] = {
        "poolclass": QueuePool,
        "pool_size": options.pool_size,
        "pool_timeout": options.connect_timeout_s,
        "pool_pre_ping": True,
        "hide_parameters": True,
    }
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise AdapterConfigError(f"{service}: the sql adapter needs a SQLite file path")
        uri = Path(database).absolute().as_uri() + "?mode=ro"
        timeout = options.connect_timeout_s

        def creator() -> sqlite3.Connection:
            return sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)

        return create_engine(url, creator=creator, **common)
    if backend == "postgresql":
        if url.get_driver_name() not in ("psycopg", "psycopg2"):
            url = url.set(drivername="postgresql+psycopg")
        pg_options = " ".join(
            part
            for part in (url.query.get("options"), "-c default_transaction_read_only=on")
            if isinstance(part, str)
        )
        url = url.difference_update_query(["options"])
        connect_args = {
            "options": pg_options,
            "connect_timeout": max(2, math.ceil(options.connect_timeout_s)),
        }
        return create_engine(url, connect_args=connect_args, **common)
    raise AdapterConfigError(f"{service}: sql adapter: sqlite or postgresql, not {backend}")


class SqlAdapter:
    """Answer a shared-schema request with one read-only query and a mapping function."""

    kind: ClassVar[str] = "sql"
    options_model: ClassVar[type[AdapterOptions]] = SqlOptions

    def __init__(self, options: SqlOptions, context: AdapterContext) -> None:
        self.options = options
        self.context = context
        self._statement = text(options.query)
        self._params = sorted(self._statement.compile().params)
        unknown = [p for p in self._params if p not in context.request_model.model_fields]
        if unknown:
            raise AdapterConfigError(
                f"{context.service}: the query's parameters {', '.join(unknown)} are not fields "
                f"of {context.request_model.__name__}"
            )
        self._map = load_function(options.map, context.service)
        self.engine: Engine = _make_engine(options, context.service)

    def call(self, request: SharedRequest, deadline: Deadline) -> SharedResponse:
        service = self.context.service
        values = request.model_dump()
        params = {p: values[p] for p in self._params}
        try:
            with self.engine.connect() as conn:
                rows = self._query(conn, params, deadline)
        except Exception as exc:
            error = _translate(exc, service)
            if error is None:
                raise
            if isinstance(error, ProviderUnavailable | ProviderTimeout):
                raise error from exc
            raise error from None
        return mapped_answer(lambda: self._map(rows, request), self.context.response_model, service)

    def _query(
        self, conn: Connection, params: dict[str, Any], deadline: Deadline
    ) -> list[dict[str, Any]]:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise ProviderTimeout(f"{self.context.service}: the deadline passed before the query")
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET TRANSACTION READ ONLY"))
            conn.execute(text(f"SET LOCAL statement_timeout = {max(1, int(remaining * 1000))}"))
            return [dict(row._mapping) for row in conn.execute(self._labelled(), params)]
        raw = conn.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        raw.execute(f"PRAGMA busy_timeout = {max(1, int(remaining * 1000))}")
        raw.set_progress_handler(deadline.expired, 1000)
        try:
            return [dict(row._mapping) for row in conn.execute(self._labelled(), params)]
        finally:
            raw.set_progress_handler(None, 0)

    def _labelled(self) -> TextClause:
        """The query, preceded by a comment with the bus message id it answers (if any)."""
        answering = message_id()
        if not answering:
            return self._statement
        return text(f"/* bus-message-id {answering} */ {self.options.query}")

    def readiness_probe(self) -> Callable[[Deadline], None] | None:
        return self._probe if self.options.probe else None

    def _probe(self, deadline: Deadline) -> None:
        try:
            with self.engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    timeout_ms = max(1, int(deadline.remaining() * 1000))
                    conn.execute(text(f"SET LOCAL statement_timeout = {timeout_ms}"))
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            error = _translate(exc, self.context.service)
            if error is None:
                raise
            raise error from None

    def close(self) -> None:
        self.engine.dispose()
