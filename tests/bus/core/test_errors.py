"""The error tree: stable unique codes, rebuilding from a code, and what is transient."""

from __future__ import annotations

import re

import pytest

import adapters
from bus.core import errors
from bus.core.errors import (
    PROBLEM_TYPE_BASE,
    BusError,
    ProviderError,
    RequestRefused,
    SignatureInvalid,
    from_code,
)
from schemas.errors import CodedError
from signing import CertificateRevokedError, CertificateUntrustedError, SigningError


def tree(cls: type[BusError] = BusError) -> list[type[BusError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(tree(sub))
    return out


# The classes of the tree: bus/core/errors.py and schemas/errors.py (other modules may
# specialise them, e.g. TransportClosed).
ALL = [cls for cls in tree() if cls.__module__ in ("bus.core.errors", "schemas.errors")]
EXPORTED = [getattr(errors, n) for n in errors.__all__
            if isinstance(getattr(errors, n), type) and issubclass(getattr(errors, n), BusError)]


def test_the_tree_is_what_the_module_exports() -> None:
    assert set(ALL) == set(EXPORTED)


def test_every_code_is_unique() -> None:
    codes = [cls.code for cls in ALL]
    assert len(codes) == len(set(codes)), sorted(codes)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_code_is_a_bounded_label(cls: type[BusError]) -> None:
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", cls.code)
    assert 400 <= cls.status <= 599
    assert cls.title


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_class_is_drawn_in_the_docstring(cls: type[BusError]) -> None:
    doc = errors.__doc__ or ""
    assert re.search(rf"\b{cls.__name__}\b", doc), cls.__name__
    if cls not in (BusError, RequestRefused, ProviderError):
        line = next(ln for ln in doc.splitlines() if re.search(rf"\b{cls.__name__}\b", ln))
        assert f"{cls.status} {cls.code}" in line, line


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_from_code_round_trips(cls: type[BusError]) -> None:
    error = from_code(cls.code, "what happened", message_id="m-1", client="portal",
                      service="civil-registry/residence/v1")
    assert type(error) is cls
    assert error.code == cls.code
    assert error.detail == str(error) == "what happened"
    assert (error.message_id, error.client, error.service) == (
        "m-1", "portal", "civil-registry/residence/v1")
    assert error.type_uri == PROBLEM_TYPE_BASE + cls.code


def test_specialisations_elsewhere_keep_their_parents_code_and_do_not_hijack_it() -> None:
    import bus.transport  # noqa: F401  (defines TransportClosed(BusUnavailable))

    owners = {cls.code: cls for cls in ALL}
    outside = [cls for cls in tree() if cls.__module__ not in ("bus.core.errors", "schemas.errors")]
    assert outside, "expected at least bus.transport.TransportClosed"
    for cls in outside:
        assert cls.code in owners, f"{cls.__name__} has a code from_code does not know"
        assert issubclass(cls, owners[cls.code]), cls.__name__
        assert type(from_code(cls.code)) is owners[cls.code]


def test_from_code_without_detail_uses_the_title() -> None:
    error = from_code("access-denied")
    assert error.detail == "Access denied" == str(error)


def test_from_code_passes_the_signature_reason() -> None:
    error = from_code("signature-invalid", "who?", reason="unknown-key")
    assert isinstance(error, SignatureInvalid)
    assert error.reason == "unknown-key"
    assert isinstance(from_code("signature-invalid"), SignatureInvalid)
    assert from_code("signature-invalid").reason == "bad-signature"  # type: ignore[attr-defined]


@pytest.mark.parametrize("code", ["no-such-error", "", "ACCESS-DENIED", "access_denied", " "])
def test_unknown_code_gives_a_plain_bus_error(code: str) -> None:
    error = from_code(code, "from a newer node", service="x/y/v1")
    assert type(error) is BusError
    assert error.detail == "from a newer node"
    assert error.service == "x/y/v1"
    assert error.code == "bus-error"


@pytest.mark.parametrize("cls", tree(RequestRefused), ids=lambda c: c.__name__)
def test_refusals_are_never_transient_and_are_4xx(cls: type[BusError]) -> None:
    assert cls.transient is False
    assert 400 <= cls.status < 500


def test_what_is_transient() -> None:
    transient = {cls.__name__ for cls in ALL if cls.transient}
    assert transient == {"ProviderUnavailable", "ProviderTimeout", "BusUnavailable", "CircuitOpen"}


def test_the_tree_shape() -> None:
    assert set(tree(RequestRefused)) == {
        errors.RequestRefused, errors.MalformedRequest, errors.Unauthenticated,
        errors.AccessDenied, errors.UnknownService, errors.PayloadTooLarge,
        errors.SchemaInvalid, errors.SignatureInvalid, errors.Expired, errors.Replayed,
        errors.CertificateUntrusted, errors.CertificateRevoked, errors.UnknownDocument,
        errors.RateLimited, errors.AsyncRequired, errors.TaskNotOpen,
        errors.DocumentPurged, errors.CallbackRefused, errors.HeaderNotUnderstood,
        errors.RequestTimeout, errors.UnsupportedMediaType, errors.MethodNotAllowed,
    }
    assert errors.DocumentPurged.__bases__ == (errors.UnknownDocument,)  # caught as unknown
    assert errors.HeaderNotUnderstood.__bases__ == (errors.MalformedRequest,)
    # certificate refusals are signature refusals (caught as such), with their own code
    for cls in (errors.CertificateUntrusted, errors.CertificateRevoked):
        assert cls.__bases__ == (SignatureInvalid,)
    assert set(tree(ProviderError)) == {
        errors.ProviderError, errors.ProviderUnavailable, errors.ProviderTimeout,
        errors.ProviderRejected, errors.ProviderInvalidAnswer, errors.NoData, errors.CircuitOpen,
    }
    for cls in (errors.DeadlineExceeded, errors.BusUnavailable):
        assert cls.__bases__ == (BusError,)


@pytest.mark.parametrize(
    "name",
    ["ProviderError", "ProviderUnavailable", "ProviderTimeout", "ProviderRejected",
     "ProviderInvalidAnswer", "NoData"],
)
def test_adapters_raise_the_bus_errors_themselves(name: str) -> None:
    """One vocabulary: an adapter's error is the bus's class, not a namesake to translate."""
    assert getattr(adapters, name) is getattr(errors, name)
    assert type(from_code(getattr(errors, name).code)) is getattr(errors, name)


@pytest.mark.parametrize(
    ("signing_error", "bus_error"),
    [(SigningError("bad-signature", "x"), errors.SignatureInvalid),
     (CertificateUntrustedError("expired", "x"), errors.CertificateUntrusted),
     (CertificateRevokedError("x"), errors.CertificateRevoked)],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v.__name__,
)
def test_signing_errors_share_the_base_and_name_the_bus_error_they_become(
    signing_error: SigningError, bus_error: type[BusError]
) -> None:
    assert isinstance(signing_error, CodedError) and not isinstance(signing_error, BusError)
    assert type(from_code(signing_error.code)) is bus_error


def test_what_is_transient_is_read_from_the_classes() -> None:
    transient = {cls.code for cls in ALL if cls.transient}
    assert transient == {"provider-unavailable", "circuit-open", "provider-timeout",
                         "bus-unavailable"}
    assert all(errors.is_transient(code) for code in transient)
    assert not errors.is_transient("no-data") and not errors.is_transient("what-is-this")


def test_repr_and_errors_payload() -> None:
    problems: list[dict[str, object]] = [{"loc": ["pinfl"], "msg": "bad"}]
    error = errors.SchemaInvalid("1 field invalid", service="a/b/v1", errors=problems)
    assert error.errors == problems
    assert repr(error) == "SchemaInvalid('1 field invalid', service='a/b/v1')"


def test_errors_are_exceptions_that_can_be_caught_by_branch() -> None:
    with pytest.raises(RequestRefused):
        raise from_code("payload-too-large")
    with pytest.raises(ProviderError):
        raise from_code("no-data")
    with pytest.raises(BusError):
        raise from_code("deadline-exceeded")
