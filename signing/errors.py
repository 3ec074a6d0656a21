"""Errors of the signing layer. ``reason`` is a short, bounded label (used in metrics).

They share the base of every error of ours (``schemas.errors.CodedError``), and their ``code``
is the bus error they become at the bus (``bus.core.errors.from_code``).
"""

from __future__ import annotations

from schemas.errors import CodedError

__all__ = ["CertificateRevokedError", "CertificateUntrustedError", "SigningError"]


class SigningError(CodedError):
    """A signature could not be made or verified.

    ``reason`` is one of: ``malformed`` (not a detached JWS we accept, or hostile XML),
    ``unsupported-alg``, ``unknown-key`` (the key id is not in the trust store),
    ``bad-signature`` (the bytes do not match), ``key-error`` (a key file could not be read),
    ``wrapped`` (an XML signature that does not cover what would be consumed), or one of the
    certificate reasons of the subclasses below.
    """

    code = "signature-invalid"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class CertificateUntrustedError(SigningError):
    """The key's certificate cannot be trusted (now, or at the time given).

    ``reason``: ``unknown-issuer`` (not issued by the bus CA), ``wrong-member`` (the certificate
    names another member than the one it was configured for), ``not-for-signing`` (a CA
    certificate, or no digitalSignature key usage), ``expired``, ``not-yet-valid``.
    """

    code = "certificate-untrusted"


class CertificateRevokedError(CertificateUntrustedError):
    """The key's certificate is on the bus CA's revocation list (``reason`` ``revoked``)."""

    code = "certificate-revoked"

    def __init__(self, detail: str) -> None:
        super().__init__("revoked", detail)
