"""Keys, certificates, the trust store, and signatures: detached JWS over canonical JSON.

Imports nothing else of the project: it signs and verifies bytes and JSON objects. The bus
decides *what* is signed (an envelope without its signature) and *who* must have signed it.
"""

from signing.ca import CertificateAuthority, issue_member, rotate_member
from signing.certificates import (
    CertificateTrustStore,
    check_validity,
    load_ca_certificate,
    load_certificates,
    member_of,
)
from signing.errors import CertificateRevokedError, CertificateUntrustedError, SigningError
from signing.jws import JwsSigner, JwsVerifier, Signer, canonical_json
from signing.keys import (
    PrivateKey,
    PublicKey,
    generate_member_key,
    generate_signing_key,
    key_id,
    load_private_key,
    load_public_key,
    load_signing_key,
)
from signing.rotation import KeyFileSigner
from signing.truststore import StaticTrustStore, TrustedKey, TrustStore

__all__ = [
    "CertificateAuthority",
    "CertificateRevokedError",
    "CertificateTrustStore",
    "CertificateUntrustedError",
    "JwsSigner",
    "JwsVerifier",
    "KeyFileSigner",
    "PrivateKey",
    "PublicKey",
    "Signer",
    "SigningError",
    "StaticTrustStore",
    "TrustStore",
    "TrustedKey",
    "canonical_json",
    "check_validity",
    "generate_member_key",
    "generate_signing_key",
    "issue_member",
    "key_id",
    "load_ca_certificate",
    "load_certificates",
    "load_private_key",
    "load_public_key",
    "load_signing_key",
    "member_of",
    "rotate_member",
]
