"""Typed errors of the bus, one tree, each with a stable ``code``.

    BusError
    ├── RequestRefused           the caller's fault: 4xx / SOAP Client fault; never retried
    │   ├── MalformedRequest     400 malformed-request
    │   │   └── HeaderNotUnderstood 400 must-understand (a SOAP header mustUnderstand="1")
    │   ├── AsyncRequired        400 async-required      (a service answered later: ?mode=async)
    │   ├── Unauthenticated      401 unauthenticated
    │   ├── AccessDenied         403 access-denied
    │   ├── UnknownService       404 unknown-service
    │   ├── UnknownDocument      404 unknown-document    (a request number not issued here)
    │   │   └── DocumentPurged   410 document-purged     (its signed answer is past retention)
    │   ├── CallbackRefused      422 callback-refused    (X-Bus-Callback not allowed; reason)
    │   ├── PayloadTooLarge      413 payload-too-large
    │   ├── UnsupportedMediaType 415 unsupported-media-type (a body that is not JSON)
    │   ├── RequestTimeout       408 request-timeout     (the body came too slowly)
    │   ├── MethodNotAllowed     405 method-not-allowed  (``Allow`` names the methods)
    │   ├── SchemaInvalid        422 schema-invalid
    │   ├── SignatureInvalid     403 signature-invalid   (reason: unknown-key, bad-signature, …)
    │   │   ├── CertificateUntrusted 403 certificate-untrusted (reason: unknown-issuer, expired, …)
    │   │   └── CertificateRevoked   403 certificate-revoked   (reason: revoked)
    │   ├── Replayed             409 replayed            (an envelope id already acted on)
    │   ├── TaskNotOpen          409 task-closed         (an operator task answered already)
    │   ├── RateLimited          429 rate-limited        (the member's rate limit; Retry-After)
    │   └── Expired              403 expired             (reason: expired, issued-in-future, …)
    ├── ProviderError            the provider's fault: retried when ``transient``
    │   ├── ProviderUnavailable  502 provider-unavailable   (transient)
    │   │   └── CircuitOpen      503 circuit-open           (transient; the breaker is open)
    │   ├── ProviderTimeout      504 provider-timeout       (transient)
    │   ├── ProviderRejected     502 provider-rejected
    │   ├── ProviderInvalidAnswer 502 provider-invalid-answer
    │   └── NoData               404 no-data
    ├── DeadlineExceeded         504 deadline-exceeded
    └── BusUnavailable           503 bus-unavailable         our own fault

``BusError`` and the ``ProviderError`` branch are defined in ``schemas.errors`` (adapters raise
them; the signing layer's errors share the base) and exported here with the rest of the tree.
``code`` is used verbatim as the suffix of the RFC 9457 ``type`` URI, as the SOAP fault code, as
the ``code`` of an error envelope's payload and as a metric label. ``from_code`` rebuilds the
typed error on the far side of a hop from an error envelope.
"""

from __future__ import annotations

from pydantic import ValidationError

from schemas.errors import (
    PROBLEM_TYPE_BASE,
    BusError,
    NoData,
    ProviderError,
    ProviderInvalidAnswer,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)

__all__ = [
    "PROBLEM_TYPE_BASE",
    "AccessDenied",
    "AsyncRequired",
    "BusError",
    "BusUnavailable",
    "CallbackRefused",
    "CertificateRevoked",
    "CertificateUntrusted",
    "CircuitOpen",
    "DeadlineExceeded",
    "DocumentPurged",
    "Expired",
    "HeaderNotUnderstood",
    "MalformedRequest",
    "MethodNotAllowed",
    "NoData",
    "PayloadTooLarge",
    "ProviderError",
    "ProviderInvalidAnswer",
    "ProviderRejected",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "Replayed",
    "RequestRefused",
    "RequestTimeout",
    "SchemaInvalid",
    "SignatureInvalid",
    "TaskNotOpen",
    "Unauthenticated",
    "UnknownDocument",
    "UnknownService",
    "UnsupportedMediaType",
    "from_code",
    "is_transient",
]

class RequestRefused(BusError):
    code = "request-refused"
    status = 400
    title = "Request refused"


class MalformedRequest(RequestRefused):
    code = "malformed-request"
    status = 400
    title = "Malformed request"


class HeaderNotUnderstood(MalformedRequest):
    """A SOAP header block marked ``mustUnderstand="1"`` that the bus does not process; the
    SOAP gateway answers it with the ``soap:MustUnderstand`` fault code of SOAP 1.1."""

    code = "must-understand"
    status = 400
    title = "SOAP header not understood"


class Unauthenticated(RequestRefused):
    """``reason`` (a bounded metric label): missing-token, unknown-token, not-hosted."""

    code = "unauthenticated"
    status = 401
    title = "Missing or invalid API token"

    def __init__(self, detail: str = "", *, reason: str = "unknown-token", **kw: object) -> None:
        super().__init__(detail, **kw)  # type: ignore[arg-type]
        self.reason = reason


class AccessDenied(RequestRefused):
    """``reason`` (a bounded metric label): no-right, purpose-not-allowed."""

    code = "access-denied"
    status = 403
    title = "Access denied"

    def __init__(self, detail: str = "", *, reason: str = "no-right", **kw: object) -> None:
        super().__init__(detail, **kw)  # type: ignore[arg-type]
        self.reason = reason


class UnknownService(RequestRefused):
    code = "unknown-service"
    status = 404
    title = "Unknown service"


class AsyncRequired(RequestRefused):
    """The service is answered later (by an operator, say): ask it with ``?mode=async``."""

    code = "async-required"
    status = 400
    title = "This service answers asynchronously"


class TaskNotOpen(RequestRefused):
    """An operator task that was answered, rejected or expired already."""

    code = "task-closed"
    status = 409
    title = "The task is closed"


class UnknownDocument(RequestRefused):
    code = "unknown-document"
    status = 404
    title = "Unknown document"


class DocumentPurged(UnknownDocument):
    """The number was issued here, but its signed answer was deleted after the retention
    period (``documents.retention_days``); ``/verify`` still shows what was issued."""

    code = "document-purged"
    status = 410
    title = "Document deleted after its retention period"


class CallbackRefused(RequestRefused):
    """An ``X-Bus-Callback`` URL the node's callback policy does not allow
    (``bus.policy.callbacks``).
    ``reason`` (a bounded label): ``host-not-allowed``, ``https-required``, ``address-refused``
    (a non-public address), ``credentials``."""

    code = "callback-refused"
    status = 422
    title = "Callback URL not allowed"

    def __init__(self, detail: str = "", *, reason: str = "host-not-allowed", **kw: object
                 ) -> None:
        super().__init__(detail, **kw)  # type: ignore[arg-type]
        self.reason = reason


class PayloadTooLarge(RequestRefused):
    code = "payload-too-large"
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(RequestRefused):
    """A request body that is not ``application/json`` where JSON is read."""

    code = "unsupported-media-type"
    status = 415
    title = "Unsupported media type"


class RequestTimeout(RequestRefused):
    """A request whose body did not arrive within the node's ``http.body_timeout_s``."""

    code = "request-timeout"
    status = 408
    title = "Request body too slow"


class MethodNotAllowed(RequestRefused):
    """A path that exists, asked with a method it does not answer."""

    code = "method-not-allowed"
    status = 405
    title = "Method not allowed"


class SchemaInvalid(RequestRefused):
    code = "schema-invalid"
    status = 422
    title = "Request does not match the service schema"

    @classmethod
    def of(cls, exc: ValidationError, what: str = "the schema", **kw: object) -> SchemaInvalid:
        """The error listing each field of ``exc`` (where, what is wrong), never its value."""
        problems = exc.errors(include_url=False, include_input=False, include_context=False)
        errors: list[dict[str, object]] = [
            {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in problems
        ]
        where = ", ".join(".".join(str(p) for p in e["loc"]) or "(body)" for e in problems)
        return cls(f"{len(errors)} field(s) do not match {what}: {where}", errors=errors,
                   **kw)  # type: ignore[arg-type]


class SignatureInvalid(RequestRefused):
    """A signature could not be verified; ``reason`` is a bounded label for metrics."""

    code = "signature-invalid"
    status = 403
    title = "Signature invalid"

    def __init__(self, detail: str = "", *, reason: str = "bad-signature", **kw: object) -> None:
        super().__init__(detail, **kw)  # type: ignore[arg-type]
        self.reason = reason


class CertificateUntrusted(SignatureInvalid):
    """The signer's certificate is not trusted: ``reason`` ``unknown-issuer`` (not the bus CA's),
    ``wrong-member``, ``not-for-signing``, ``expired``, ``not-yet-valid`` (now), or
    ``not-valid-when-signed`` (at the envelope's ``issued_at``)."""

    code = "certificate-untrusted"
    status = 403
    title = "Signer's certificate not trusted"

    def __init__(self, detail: str = "", *, reason: str = "unknown-issuer", **kw: object) -> None:
        super().__init__(detail, reason=reason, **kw)


class CertificateRevoked(SignatureInvalid):
    """The signer's certificate is on the bus CA's revocation list (``reason`` ``revoked``)."""

    code = "certificate-revoked"
    status = 403
    title = "Signer's certificate revoked"

    def __init__(self, detail: str = "", *, reason: str = "revoked", **kw: object) -> None:
        super().__init__(detail, reason=reason, **kw)


class Replayed(RequestRefused):
    """An envelope id already acted on within its lifetime, delivered again from elsewhere."""

    code = "replayed"
    status = 409
    title = "Envelope replayed"

    def __init__(self, detail: str = "", *, reason: str = "replayed", **kw: object) -> None:
        super().__init__(detail, **kw)  # type: ignore[arg-type]
        self.reason = reason


class RateLimited(RequestRefused):
    """The asking member used up its rate limit (``bus.policy.ratelimit``); ``retry_after_s`` says
    when a request will pass again (the ``Retry-After`` header)."""

    code = "rate-limited"
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str = "", *, retry_after_s: float = 1.0, **kw: object) -> None:
        super().__init__(detail, **kw)  # type: ignore[arg-type]
        self.retry_after_s = retry_after_s


class Expired(RequestRefused):
    """Outside its time window: ``reason`` ``expired``, ``issued-in-future`` (beyond the clock
    skew allowed), ``inverted`` (expires before it was issued) or, for a signed SOAP request's
    timestamp, ``too-long`` (valid for longer than the gateway allows)."""

    code = "expired"
    status = 403
    title = "Envelope expired"

    def __init__(self, detail: str = "", *, reason: str = "expired", **kw: object) -> None:
        super().__init__(detail, **kw)  # type: ignore[arg-type]
        self.reason = reason


class CircuitOpen(ProviderUnavailable):
    """The provider's circuit breaker is open: it was not called (see ``bus.policy.breaker``)."""

    code = "circuit-open"
    status = 503
    title = "Provider failing; calls paused by the circuit breaker"


class DeadlineExceeded(BusError):
    code = "deadline-exceeded"
    status = 504
    title = "Deadline exceeded"


class BusUnavailable(BusError):
    code = "bus-unavailable"
    status = 503
    title = "Bus unavailable"
    transient = True


def _all_subclasses(cls: type[BusError]) -> list[type[BusError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


# The bus's own tree only (other layers may subclass the base, e.g. ``signing.errors``).
_BY_CODE: dict[str, type[BusError]] = {
    c.code: c
    for c in _all_subclasses(BusError)
    if c.__module__ in ("schemas.errors", __name__)
}


def is_transient(code: str) -> bool:
    """Whether an error with ``code`` may pass if tried again (declared on its class)."""
    return _BY_CODE.get(code, BusError).transient


def from_code(code: str, detail: str = "", **kw: object) -> BusError:
    """Rebuild the typed error for ``code`` (an unknown code becomes a plain ``BusError``)."""
    cls = _BY_CODE.get(code, BusError)
    return cls(detail, **kw)  # type: ignore[arg-type]
