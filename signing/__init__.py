"""Keys, the trust store, and detached JWS signatures over canonical JSON.

Imports nothing else of the project: it signs and verifies bytes and JSON objects. The bus
decides *what* is signed (an envelope without its signature) and *who* must have signed it.
"""

from signing.errors import SigningError
from signing.jws import JwsSigner, JwsVerifier, canonical_json
from signing.keys import generate_member_key, key_id, load_private_key, load_public_key
from signing.truststore import StaticTrustStore, TrustedKey, TrustStore

__all__ = [
    "JwsSigner",
    "JwsVerifier",
    "SigningError",
    "StaticTrustStore",
    "TrustStore",
    "TrustedKey",
    "canonical_json",
    "generate_member_key",
    "key_id",
    "load_private_key",
    "load_public_key",
]
