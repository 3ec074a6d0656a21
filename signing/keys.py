"""Member keys: Ed25519 key pairs in PEM files, and their key ids.

A key id is ``<member>#<16 hex of SHA-256 of the raw public key>``: it names the member and pins
the exact key, so a rotated key gets a new id while the old one can still be verified.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from signing.errors import SigningError

__all__ = ["generate_member_key", "key_id", "load_private_key", "load_public_key"]


def key_id(member: str, public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"{member}#{hashlib.sha256(raw).hexdigest()[:16]}"


def generate_member_key(
    directory: Path, member: str, *, passphrase: bytes | None = None, overwrite: bool = False
) -> tuple[Path, Path]:
    """Create ``<member>.key`` (private, mode 0600) and ``<member>.pub`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / f"{member}.key", directory / f"{member}.pub"
    if private_path.exists() and not overwrite:
        raise FileExistsError(f"{private_path} exists; refusing to overwrite a member key")
    key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def load_private_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningError("key-error", f"cannot load private key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError("key-error", f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SigningError("key-error", f"cannot load public key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError("key-error", f"{path} is not an Ed25519 public key")
    return key
