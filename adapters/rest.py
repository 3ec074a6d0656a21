"""The ``rest`` adapter: calls an agency's REST/JSON API over HTTP(S) with httpx.

One ``httpx.Client`` (with its connection pool) per adapter, made in the constructor and closed
by ``close()``. Proxy and certificate settings are not read from the environment
(``trust_env=False``): everything the adapter does is in its options.

Options (the keys under ``adapter:`` with ``kind: rest``)::

    base_url            str          required, e.g. "http://127.0.0.1:8102"
    method              GET | POST   default GET
    path                str          required, a template whose {field} placeholders are filled
                                     from the request model's fields, URL-quoted, e.g.
                                     "/api/v2/citizens/{pinfl}/registration"
    map                 str          required, dotted path of the mapping module (below)
    headers             {str: str}   default {}, sent with every call
    verify_tls          bool         default true
    max_response_bytes  int          default 1048576; a longer (decoded) body is an invalid answer
    probe_path          str          default none; a path to GET for the node's readiness (e.g.
                                     "/health"): an answer below 400 means the agency is reachable

The mapping module (``map``) provides two functions::

    to_request(request: SharedRequest) -> dict[str, Any]
        the query parameters of a GET, or the JSON body of a POST (return {} for none); it sees
        only valid shared requests, so its failures are bugs and propagate untranslated;
    to_response(native: Any, request: SharedRequest) -> SharedResponse | dict
        the agency's decoded JSON answer turned into the service's response model (a dict is
        validated against it). It may raise ``NoData`` when the answer says "nothing known".

Every call carries the bus message id of the request it answers in the header
``X-Bus-Message-Id`` (``adapters.base.message_id``): a request the bus delivers again (its worker
died before recording the answer) comes with the same id, so the agency can de-duplicate.

The whole call (connect, send, read) ends by ``deadline``: each call's httpx timeout is the
deadline's remaining time, and the body is read in chunks that stop when the deadline passes.

Errors (all translated in ``_translated``)::

    connection refused/reset, protocol error, 5xx, 429  -> ProviderUnavailable (transient)
    timeout, deadline passed while reading, 408         -> ProviderTimeout (transient)
    404                                                 -> NoData
    other 4xx                                           -> ProviderRejected
    other non-2xx, non-JSON body, body over the limit,
    mapping or validation failure                       -> ProviderInvalidAnswer

Messages name the call by its template ("GET /api/v2/citizens/{pinfl}/registration"), never by
the filled URL, so no personal identifier reaches an exception or a log line. For the same reason
mapping failures do not chain the original exception (a pydantic error quotes the input).
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import Field

from adapters.base import (
    AdapterConfigError,
    AdapterContext,
    AdapterOptions,
    Deadline,
    NoData,
    ProviderError,
    ProviderInvalidAnswer,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    message_id,
)
from adapters.mapping import MAPPING_ERRORS, load_module, mapped_answer
from schemas import SharedRequest, SharedResponse

__all__ = ["MESSAGE_ID_HEADER", "RestAdapter", "RestOptions"]

MESSAGE_ID_HEADER = "X-Bus-Message-Id"

#: What decoding or a mapping function raises when the answer does not have the expected shape
#: (RecursionError: JSON nested too deeply to decode).


class RestOptions(AdapterOptions):
    base_url: str = Field(pattern=r"^https?://")
    method: Literal["GET", "POST"] = "GET"
    path: str = Field(pattern=r"^/")
    map: str = Field(pattern=r"^[A-Za-z_][\w.]*$")
    headers: dict[str, str] = {}
    verify_tls: bool = True
    max_response_bytes: int = Field(default=1_048_576, gt=0)
    probe_path: str | None = Field(default=None, pattern=r"^/")


class _BadStatus(Exception):
    """An HTTP status other than 2xx, raised inside ``_translated`` and mapped there."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """The one place where httpx, HTTP status and mapping failures become adapter errors."""
    try:
        yield
    except ProviderError:
        raise
    except _BadStatus as exc:
        status = exc.status
        if status == 404:
            raise NoData(f"{what}: 404, the provider holds nothing about the subject") from None
        if status == 408:
            raise ProviderTimeout(f"{what}: 408 from the provider") from None
        if status >= 500 or status == 429:
            raise ProviderUnavailable(f"{what}: {status} from the provider") from None
        if 400 <= status < 500:
            raise ProviderRejected(f"{what}: the provider refused the request ({status})") from None
        raise ProviderInvalidAnswer(f"{what}: unexpected HTTP status {status}") from None
    except httpx.TimeoutException as exc:
        raise ProviderTimeout(f"{what}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        name = type(exc).__name__
        raise ProviderUnavailable(f"{what}: cannot reach the provider ({name})") from exc
    except MAPPING_ERRORS as exc:  # the answer is not JSON
        raise ProviderInvalidAnswer(
            f"{what}: the answer cannot be mapped ({type(exc).__name__})"
        ) from None


class RestAdapter:
    """Answer a shared-schema request by one HTTP call to the agency's JSON API."""

    kind: ClassVar[str] = "rest"
    options_model: ClassVar[type[AdapterOptions]] = RestOptions

    def __init__(self, options: RestOptions, context: AdapterContext) -> None:
        self.options = options
        self.context = context
        self._what = f"{options.method} {options.path}"
        self._fields = [f for _, f, _, _ in string.Formatter().parse(options.path) if f is not None]
        unknown = [f for f in self._fields if f not in context.request_model.model_fields]
        if unknown:
            raise AdapterConfigError(
                f"{context.service}: path {options.path!r} names {', '.join(unknown)}, which "
                f"{context.request_model.__name__} does not have"
            )
        self._to_request, self._to_response = load_module(options.map, context.service)
        self._client = httpx.Client(
            base_url=options.base_url,
            headers=options.headers,
            verify=options.verify_tls,
            follow_redirects=False,
            trust_env=False,
        )

    def call(self, request: SharedRequest, deadline: Deadline) -> SharedResponse:
        values = request.model_dump(mode="json")
        url = self.options.path.format_map(
            {f: quote(str(values[f]), safe="") for f in self._fields}
        )
        native_request = self._to_request(request)
        get = self.options.method == "GET"
        with _translated(self._what):
            body = self._exchange(
                url,
                params=native_request if get else None,
                json_body=None if get else native_request,
                deadline=deadline,
            )
            native = json.loads(body)
        return mapped_answer(
            lambda: self._to_response(native, request), self.context.response_model, self._what
        )

    def _exchange(self, url: str, params: Any, json_body: Any, deadline: Deadline) -> bytes:
        """Send the request; return the body of a 2xx answer, else raise ``_BadStatus``."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise ProviderTimeout(f"{self._what}: the deadline passed before the call")
        limit = self.options.max_response_bytes
        answering = message_id()
        with self._client.stream(
            self.options.method,
            url,
            params=params,
            json=json_body,
            headers={MESSAGE_ID_HEADER: answering} if answering else None,
            timeout=httpx.Timeout(remaining),
        ) as response:
            if not 200 <= response.status_code < 300:
                raise _BadStatus(response.status_code)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise ProviderInvalidAnswer(
                    f"{self._what}: the answer is larger than {limit} bytes"
                )
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ProviderInvalidAnswer(
                        f"{self._what}: the answer is larger than {limit} bytes"
                    )
                if deadline.expired():
                    raise ProviderTimeout(f"{self._what}: the deadline passed while reading")
                chunks.append(chunk)
        return b"".join(chunks)

    def readiness_probe(self) -> Callable[[Deadline], None] | None:
        return None if self.options.probe_path is None else self._probe

    def _probe(self, deadline: Deadline) -> None:
        path = self.options.probe_path
        assert path is not None
        what = f"GET {path}"
        try:
            status = self._client.get(path, timeout=max(deadline.remaining(), 0.001)).status_code
        except httpx.TimeoutException:
            raise ProviderTimeout(f"{what}: timed out") from None
        except httpx.TransportError as exc:
            name = type(exc).__name__
            raise ProviderUnavailable(f"{what}: cannot reach the provider ({name})") from None
        if status >= 400:
            raise ProviderUnavailable(f"{what}: {status} from the provider")

    def close(self) -> None:
        self._client.close()
