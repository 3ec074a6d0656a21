"""The ``soap`` adapter: calls one operation of an agency's SOAP service, described by its WSDL.

Built on zeep. The WSDL is loaded on the first call (not in the constructor, so a node starts
while an agency is down; a failed load is retried by the next call), through one
``requests.Session`` per adapter with zeep's hardened settings (no DTD, no entities, no
transitive fetches of external resources, no huge trees). Proxy and certificate settings are not
read from the environment: everything the adapter does is in its options.

Options (the keys under ``adapter:`` with ``kind: soap``)::

    wsdl                str          required, the WSDL's URL, e.g.
                                     "http://127.0.0.1:8101/ws/birth?wsdl" (or a file path)
    operation           str          required, the operation to call, e.g. "GetBirthRecord"
    map                 str          required, dotted path of the mapping module (below)
    service             str          default none: the WSDL's first service; else its name
    port                str          default none: the service's first SOAP port; else its name
    address             str          default none: the endpoint from the WSDL; else this URL
                                     (when the WSDL names a host the bus cannot reach)
    headers             {str: str}   default {}, HTTP headers sent with every call
    verify_tls          bool         default true
    max_response_bytes  int          default 1048576; a longer answer is an invalid answer
    faults              {str: str}   default {}: SOAP fault code (without its prefix, e.g.
                                     "Client.NotFound") -> bus error code, one of no-data,
                                     provider-rejected, provider-unavailable, provider-timeout,
                                     provider-invalid-answer; consulted before the defaults below

The mapping module (``map``) provides two functions::

    to_request(request: SharedRequest) -> dict[str, Any]
        the keyword arguments of the operation (zeep builds the input message from them);
    to_response(native: Any, request: SharedRequest) -> SharedResponse | dict
        the operation's output as plain dicts and lists (``zeep.helpers.serialize_object``)
        turned into the service's response model (a dict is validated against it). It may
        raise ``NoData`` when the answer says "nothing known".

Every call carries the bus message id of the request it answers in a SOAP header,
``<bus:MessageId xmlns:bus="urn:bus:soap:v1">…</bus:MessageId>`` (``adapters.base.message_id``;
the namespace of the bus's own SOAP gateway): a request the bus delivers again (its worker died
before recording the answer) comes with the same id, so the agency can de-duplicate. A service
that does not know the header ignores it (``mustUnderstand`` is not set).

The call (send and read) ends by ``deadline``: each call's HTTP timeout is the deadline's
remaining time, and the body is read in chunks that stop when the deadline passes.

Errors (all translated in ``_translated``)::

    connection refused/reset, WSDL cannot be loaded  -> ProviderUnavailable (transient)
    HTTP 5xx or 429 without a SOAP Fault             -> ProviderUnavailable (transient)
    timeout, deadline passed while reading           -> ProviderTimeout (transient)
    SOAP Fault: the code's entry in ``faults``, else by its class (the part before the first
    "."): Server/Receiver -> ProviderUnavailable (transient); Client/Sender and any
    other -> ProviderRejected
    other HTTP 4xx without a SOAP Fault              -> ProviderRejected
    not XML, not the operation's output, body over the limit, mapping or validation
    failure                                          -> ProviderInvalidAnswer
    an unknown operation, service or port in the WSDL -> AdapterConfigError (at the first call)

Messages name the call by its operation ("soap GetBirthRecord"), never by URL or content, and
do not chain zeep's exceptions (zeep quotes the response body, which may hold personal data).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

import requests
import zeep
import zeep.exceptions
import zeep.helpers
from lxml import etree
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

__all__ = ["BUS_SOAP_NS", "MESSAGE_ID_HEADER", "SoapAdapter", "SoapOptions"]

BUS_SOAP_NS = "urn:bus:soap:v1"
MESSAGE_ID_HEADER = f"{{{BUS_SOAP_NS}}}MessageId"

FaultCode = Literal[
    "no-data",
    "provider-rejected",
    "provider-unavailable",
    "provider-timeout",
    "provider-invalid-answer",
]
_BY_CODE: dict[str, type[ProviderError]] = {
    c.code: c
    for c in (NoData, ProviderRejected, ProviderUnavailable, ProviderTimeout, ProviderInvalidAnswer)
}
_WSDL_LOAD_TIMEOUT_S = 10.0


class SoapOptions(AdapterOptions):
    wsdl: str = Field(min_length=1)
    operation: str = Field(pattern=r"^[A-Za-z_][\w.-]*$")
    map: str = Field(pattern=r"^[A-Za-z_][\w.]*$")
    service: str | None = None
    port: str | None = None
    address: str | None = Field(default=None, pattern=r"^https?://")
    headers: dict[str, str] = {}
    verify_tls: bool = True
    max_response_bytes: int = Field(default=1_048_576, gt=0)
    faults: dict[str, FaultCode] = {}


class _BadStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Transport(zeep.Transport):
    """zeep's transport with a per-call deadline (thread-local) and a bounded answer."""

    def __init__(self, session: requests.Session, max_bytes: int, what: str) -> None:
        super().__init__(session=session, timeout=_WSDL_LOAD_TIMEOUT_S)
        self._max_bytes = max_bytes
        self._what = what
        self._local = threading.local()

    @contextmanager
    def deadline(self, deadline: Deadline) -> Iterator[None]:
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = None

    def _timeout(self) -> float:
        deadline: Deadline | None = getattr(self._local, "deadline", None)
        if deadline is None:
            return _WSDL_LOAD_TIMEOUT_S
        return min(deadline.remaining(), _WSDL_LOAD_TIMEOUT_S)

    def _load_remote_data(self, url: str) -> bytes:
        """The WSDL (and what it includes), within the first call's deadline."""
        timeout = self._timeout()
        if timeout <= 0:
            raise ProviderTimeout(f"{self._what}: the deadline passed before the WSDL loaded")
        response = self.session.get(url, timeout=timeout)
        with response:
            response.raise_for_status()
            if len(response.content) > self._max_bytes:
                raise ProviderInvalidAnswer(
                    f"{self._what}: the WSDL is larger than {self._max_bytes} B"
                )
            return bytes(response.content)

    def post(self, address: str, message: bytes, headers: dict[str, str]) -> requests.Response:
        deadline: Deadline | None = getattr(self._local, "deadline", None)
        timeout = deadline.remaining() if deadline is not None else _WSDL_LOAD_TIMEOUT_S
        if timeout <= 0:
            raise ProviderTimeout(f"{self._what}: the deadline passed before the call")
        response = self.session.post(
            address, data=message, headers=headers, timeout=timeout, stream=True
        )
        with response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_bytes:
                raise ProviderInvalidAnswer(
                    f"{self._what}: the answer is larger than {self._max_bytes} B"
                )
            chunks, size = [], 0
            try:
                for chunk in response.iter_content(65536):
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise ProviderInvalidAnswer(
                            f"{self._what}: the answer is larger than {self._max_bytes} B"
                        )
                    if deadline is not None and deadline.expired():
                        raise ProviderTimeout(f"{self._what}: the deadline passed while reading")
                    chunks.append(chunk)
            except requests.RequestException:
                if deadline is not None and deadline.expired():  # a read timeout, re-wrapped
                    raise ProviderTimeout(f"{self._what}: timed out while reading") from None
                raise
        content_type = response.headers.get("content-type", "")
        if response.status_code >= 400 and "xml" not in content_type.lower():
            raise _BadStatus(response.status_code)  # an HTML error page, not a SOAP Fault
        response._content = b"".join(chunks)  # what zeep reads as response.content
        return response


def _fault_error(
    fault: zeep.exceptions.Fault, table: Mapping[str, str], what: str
) -> ProviderError:
    raw = str(fault.code or "Server")
    code = raw.rpartition(":")[2] if not raw.startswith("{") else raw.rpartition("}")[2]
    klass = code.partition(".")[0]
    detail = f"{what}: SOAP Fault {code}"
    mapped = table.get(code) or table.get(klass)
    if mapped is not None:
        return _BY_CODE[mapped](detail)
    if klass in ("Server", "Receiver"):
        return ProviderUnavailable(detail)
    return ProviderRejected(detail)


class SoapAdapter:
    """Answer a shared-schema request by one call to an operation of an agency's SOAP service."""

    kind: ClassVar[str] = "soap"
    options_model: ClassVar[type[AdapterOptions]] = SoapOptions

    def __init__(self, options: SoapOptions, context: AdapterContext) -> None:
        self.options = options
        self.context = context
        self._what = f"soap {options.operation}"
        self._to_request, self._to_response = load_module(options.map, context.service)
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.verify = options.verify_tls
        self._session.headers.update(options.headers)
        self._transport = _Transport(self._session, options.max_response_bytes, self._what)
        self._settings = zeep.Settings(
            strict=True,
            xml_huge_tree=False,
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        )
        self._lock = threading.Lock()
        self._operation: Any = None

    def _bound_operation(self) -> Any:
        """The zeep operation proxy, loading the WSDL at the first call."""
        with self._lock:
            if self._operation is not None:
                return self._operation
            o = self.options
            try:
                client = zeep.Client(o.wsdl, transport=self._transport, settings=self._settings)
            except ProviderError:
                raise
            except (requests.RequestException, OSError, zeep.exceptions.Error) as exc:
                name = type(exc).__name__
                raise ProviderUnavailable(f"{self._what}: cannot load the WSDL ({name})") from None
            try:
                if o.service is None and o.port is None and o.address is None:
                    proxy = client.service
                else:
                    service = o.service or next(iter(client.wsdl.services))
                    port = o.port or next(iter(client.wsdl.services[service].ports))
                    found = client.wsdl.services[service].ports[port]
                    address = o.address or found.binding_options["address"]
                    binding = found.binding.name
                    proxy = client.create_service(binding, address)
                operation = proxy[o.operation]
            except (KeyError, AttributeError, StopIteration, ValueError) as exc:
                raise AdapterConfigError(
                    f"{self.context.service}: the WSDL has no {o.service or ''}/{o.port or ''} "
                    f"operation {o.operation!r} ({type(exc).__name__})"
                ) from None
            self._operation = operation
            return operation

    def call(self, request: SharedRequest, deadline: Deadline) -> SharedResponse:
        if deadline.expired():
            raise ProviderTimeout(f"{self._what}: the deadline passed before the call")
        with self._transport.deadline(deadline):
            operation = self._bound_operation()
        arguments = self._to_request(request)
        answering = message_id()
        if answering:
            header = etree.Element(MESSAGE_ID_HEADER, nsmap={"bus": BUS_SOAP_NS})
            header.text = answering
            arguments = {**arguments, "_soapheaders": [header]}
        with _translated(self._what, self.options.faults):
            with self._transport.deadline(deadline):
                result = operation(**arguments)
            native = zeep.helpers.serialize_object(result, dict)
        return mapped_answer(
            lambda: self._to_response(native, request), self.context.response_model, self._what
        )

    def close(self) -> None:
        self._session.close()


@contextmanager
def _translated(what: str, faults: Mapping[str, str]) -> Iterator[None]:
    """The one place where requests, zeep and mapping failures become adapter errors."""
    try:
        yield
    except ProviderError:
        raise
    except _BadStatus as exc:
        status = exc.status
        if status >= 500 or status == 429:
            raise ProviderUnavailable(f"{what}: {status} from the provider") from None
        raise ProviderRejected(f"{what}: the provider refused the request ({status})") from None
    except zeep.exceptions.Fault as exc:
        raise _fault_error(exc, faults, what) from None
    except zeep.exceptions.TransportError as exc:
        status = exc.status_code or 0
        if status >= 500 or status == 429:
            raise ProviderUnavailable(f"{what}: {status} from the provider") from None
        if 400 <= status < 500:
            raise ProviderRejected(f"{what}: the provider refused the request ({status})") from None
        raise ProviderInvalidAnswer(
            f"{what}: the answer is not a SOAP message ({status})"
        ) from None
    except requests.Timeout as exc:
        raise ProviderTimeout(f"{what}: timed out ({type(exc).__name__})") from None
    except requests.RequestException as exc:
        name = type(exc).__name__
        raise ProviderUnavailable(f"{what}: cannot reach the provider ({name})") from None
    except zeep.exceptions.Error as exc:  # XMLParseError, ValidationError, … of the answer
        raise ProviderInvalidAnswer(
            f"{what}: the answer does not fit the WSDL ({type(exc).__name__})"
        ) from None
    except MAPPING_ERRORS as exc:
        raise ProviderInvalidAnswer(
            f"{what}: the answer cannot be mapped ({type(exc).__name__})"
        ) from None
