"""Member keys: key pairs in PEM files, and their key ids.

Two kinds of member key: Ed25519 (the bare public keys of the skeleton, ``generate_member_key``)
and ECDSA P-256 (the keys the bus CA certifies, ``generate_signing_key``; one key signs JWS as
ES256 and XMLDSig as ecdsa-sha256, which Ed25519 cannot). An agency's RSA key (2048 bits or
more) can be certified for XMLDSig (rsa-sha256) only; JWS has no RSA here. Keys are loaded once
into ``cryptography`` objects.

A key id is ``<member>#<16 hex of SHA-256 of the public key>`` (the raw 32 bytes for Ed25519,
the DER SubjectPublicKeyInfo otherwise): it names the member and pins the exact key, so a rotated
key gets a new id while the old one can still be verified.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from signing.errors import SigningError
from signing.files import private_dir, write_private

__all__ = [
    "PrivateKey",
    "PublicKey",
    "generate_member_key",
    "generate_signing_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "load_signing_key",
    "write_private_key",
]

PublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
MIN_RSA_BITS = 2048


def key_id(member: str, public_key: PublicKey) -> str:
    if isinstance(public_key, Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return f"{member}#{hashlib.sha256(raw).hexdigest()[:16]}"


def generate_signing_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key (what the bus CA certifies)."""
    return ec.generate_private_key(ec.SECP256R1())


def write_private_key(path: Path, key: PrivateKey, passphrase: bytes | None) -> Path:
    """Write ``key`` as PKCS#8 PEM (encrypted with ``passphrase`` if given), mode 0600.

    The file is replaced atomically (a reader sees the old key or the new one, never half).
    """
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    return write_private(path, pem)


def generate_member_key(
    directory: Path, member: str, *, passphrase: bytes | None = None, overwrite: bool = False
) -> tuple[Path, Path]:
    """Create ``<member>.key`` (private, mode 0600) and ``<member>.pub`` in ``directory``."""
    private_dir(directory)
    private_path, public_path = directory / f"{member}.key", directory / f"{member}.pub"
    if private_path.exists() and not overwrite:
        raise FileExistsError(f"{private_path} exists; refusing to overwrite a member key")
    key = Ed25519PrivateKey.generate()
    write_private_key(private_path, key, passphrase)
    write_private(
        public_path,
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    return private_path, public_path


def _load_pem_private(path: Path, passphrase: bytes | None) -> object:
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningError("key-error", f"cannot load private key {path}: {exc}") from exc


def load_private_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    key = _load_pem_private(path, passphrase)
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError("key-error", f"{path} is not an Ed25519 private key")
    return key


def load_signing_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    """A member's private key: Ed25519, ECDSA P-256 (certified members) or RSA (XML only).

    ``passphrase`` is used only if the file is encrypted, so one node-wide passphrase can sit
    beside members whose keys are not encrypted.
    """
    try:
        encrypted = b"ENCRYPTED" in path.read_bytes()[:64]
    except OSError as exc:
        raise SigningError("key-error", f"cannot load private key {path}: {exc}") from exc
    if encrypted and not passphrase:
        raise SigningError("key-error", f"{path} is encrypted and no passphrase was given")
    key = _load_pem_private(path, passphrase if encrypted else None)
    if isinstance(key, Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= MIN_RSA_BITS:
        return key
    raise SigningError("key-error", f"{path} is not an Ed25519, ECDSA P-256 or RSA-2048+ key")


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SigningError("key-error", f"cannot load public key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError("key-error", f"{path} is not an Ed25519 public key")
    return key
