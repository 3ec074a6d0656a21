"""Member key files, key ids and the static trust store."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from signing import (
    SigningError,
    StaticTrustStore,
    generate_member_key,
    key_id,
    load_private_key,
    load_public_key,
)


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# --- generating key files ---------------------------------------------------------------------


def test_generate_writes_a_0600_private_key_and_its_public_key(tmp_path: Path) -> None:
    private_path, public_path = generate_member_key(tmp_path / "keys", "civil-registry")
    assert private_path == tmp_path / "keys" / "civil-registry.key"
    assert public_path == tmp_path / "keys" / "civil-registry.pub"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert private_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    private_key = load_private_key(private_path)
    public_key = load_public_key(public_path)
    assert _raw(private_key.public_key()) == _raw(public_key)


def test_generate_refuses_to_overwrite_a_member_key(tmp_path: Path) -> None:
    private_path, public_path = generate_member_key(tmp_path, "portal")
    before = (private_path.read_bytes(), public_path.read_bytes())
    with pytest.raises(FileExistsError):
        generate_member_key(tmp_path, "portal")
    assert (private_path.read_bytes(), public_path.read_bytes()) == before


def test_generate_overwrites_only_when_asked(tmp_path: Path) -> None:
    private_path, _ = generate_member_key(tmp_path, "portal")
    old = load_private_key(private_path)
    generate_member_key(tmp_path, "portal", overwrite=True)
    new = load_private_key(private_path)
    assert _raw(old.public_key()) != _raw(new.public_key())
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600


def test_each_generation_makes_a_fresh_key(tmp_path: Path) -> None:
    a, _ = generate_member_key(tmp_path, "tax")
    b, _ = generate_member_key(tmp_path, "cadastre")
    assert _raw(load_private_key(a).public_key()) != _raw(load_private_key(b).public_key())


# --- passphrases ------------------------------------------------------------------------------


def test_passphrase_protected_key_loads_only_with_the_passphrase(tmp_path: Path) -> None:
    private_path, public_path = generate_member_key(
        tmp_path, "archive", passphrase=b"s3cret phrase"
    )
    assert b"ENCRYPTED" in private_path.read_bytes()
    key = load_private_key(private_path, b"s3cret phrase")
    assert _raw(key.public_key()) == _raw(load_public_key(public_path))

    with pytest.raises(SigningError) as missing:
        load_private_key(private_path)
    assert missing.value.reason == "key-error"

    with pytest.raises(SigningError) as wrong:
        load_private_key(private_path, b"s3cret phrasE")
    assert wrong.value.reason == "key-error"
    assert "s3cret" not in str(wrong.value)


def test_unencrypted_key_with_a_passphrase_is_a_key_error(tmp_path: Path) -> None:
    private_path, _ = generate_member_key(tmp_path, "archive")
    with pytest.raises(SigningError) as info:
        load_private_key(private_path, b"unexpected")
    assert info.value.reason == "key-error"


# --- loading bad files ------------------------------------------------------------------------


def test_missing_key_files_are_key_errors(tmp_path: Path) -> None:
    for load in (load_private_key, load_public_key):
        with pytest.raises(SigningError) as info:
            load(tmp_path / "absent.pem")
        assert info.value.reason == "key-error"
        assert "absent.pem" in info.value.detail


def test_garbage_key_files_are_key_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(
        b"-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n"
    )
    for load in (load_private_key, load_public_key):
        with pytest.raises(SigningError) as info:
            load(garbage)
        assert info.value.reason == "key-error"


def test_swapped_key_files_are_key_errors(tmp_path: Path) -> None:
    private_path, public_path = generate_member_key(tmp_path, "portal")
    with pytest.raises(SigningError) as a:
        load_private_key(public_path)
    with pytest.raises(SigningError) as b:
        load_public_key(private_path)
    assert a.value.reason == b.value.reason == "key-error"


def test_keys_of_another_algorithm_are_refused(tmp_path: Path) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    private_path, public_path = tmp_path / "ec.key", tmp_path / "ec.pub"
    private_path.write_bytes(ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    public_path.write_bytes(ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(SigningError, match="not an Ed25519 private key") as a:
        load_private_key(private_path)
    with pytest.raises(SigningError, match="not an Ed25519 public key") as b:
        load_public_key(public_path)
    assert a.value.reason == b.value.reason == "key-error"


# --- key ids ----------------------------------------------------------------------------------


def test_key_id_names_the_member_and_pins_the_key(tmp_path: Path) -> None:
    private_path, public_path = generate_member_key(tmp_path, "civil-registry")
    kid = key_id("civil-registry", load_public_key(public_path))
    assert re.fullmatch(r"civil-registry#[0-9a-f]{16}", kid)
    # stable: the same key, loaded again or derived from the private key, has the same id
    assert key_id("civil-registry", load_public_key(public_path)) == kid
    assert key_id("civil-registry", load_private_key(private_path).public_key()) == kid


def test_key_id_differs_for_another_key_or_member() -> None:
    a, b = Ed25519PrivateKey.generate().public_key(), Ed25519PrivateKey.generate().public_key()
    assert key_id("portal", a) != key_id("portal", b)
    assert key_id("portal", a) != key_id("tax", a)
    assert key_id("portal", a).split("#")[1] == key_id("tax", a).split("#")[1]


def test_key_id_is_sha256_of_the_raw_public_key() -> None:
    # RFC 8032 test vector 1 public key; `sha256sum` of its 32 raw bytes starts 21fe31dfa154a261.
    raw = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    assert key_id("m", Ed25519PublicKey.from_public_bytes(raw)) == "m#21fe31dfa154a261"


# --- trust store ------------------------------------------------------------------------------


def test_trust_store_from_files_resolves_each_member(tmp_path: Path) -> None:
    paths = {m: generate_member_key(tmp_path, m)[1] for m in ("portal", "tax", "cadastre")}
    store = StaticTrustStore.from_files(paths)
    assert store.members() == {"portal", "tax", "cadastre"}
    for member, path in paths.items():
        public_key = load_public_key(path)
        trusted = store.resolve(key_id(member, public_key))
        assert trusted.member == member
        assert _raw(trusted.public_key) == _raw(public_key)


def test_trust_store_unknown_key_id(tmp_path: Path) -> None:
    store = StaticTrustStore.from_files({"portal": generate_member_key(tmp_path, "portal")[1]})
    stranger = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(SigningError) as info:
        store.resolve(key_id("portal", stranger))
    assert info.value.reason == "unknown-key"
    with pytest.raises(SigningError) as empty:
        StaticTrustStore().resolve("")
    assert empty.value.reason == "unknown-key"


def test_trust_store_keeps_a_rotated_key_verifiable() -> None:
    store = StaticTrustStore()
    old, new = Ed25519PrivateKey.generate().public_key(), Ed25519PrivateKey.generate().public_key()
    old_trusted, new_trusted = store.add("tax", old), store.add("tax", new)
    assert old_trusted.kid != new_trusted.kid
    assert store.resolve(old_trusted.kid) == old_trusted
    assert store.resolve(new_trusted.kid) == new_trusted
    assert store.members() == {"tax"}


def test_trust_store_from_files_with_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SigningError) as info:
        StaticTrustStore.from_files({"portal": tmp_path / "portal.pub"})
    assert info.value.reason == "key-error"
