"""A signer that follows its key file: the rotated key is used at the next check, if trusted."""

from __future__ import annotations

from pathlib import Path

import pytest

from signing import (
    JwsVerifier,
    KeyFileSigner,
    SigningError,
    load_signing_key,
    rotate_member,
)
from tests.signing.pki import KEY_PASSPHRASE, Pki, make_pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    pki = make_pki(tmp_path)
    pki.issue("portal")
    return pki


def follower(pki: Pki, **kw: object) -> KeyFileSigner:
    return KeyFileSigner(
        "portal", pki.keys / "portal.key", KEY_PASSPHRASE, check_s=1.0,
        monotonic=pki.ticker, **kw,  # type: ignore[arg-type]
    )


def test_the_new_key_signs_from_the_next_check(pki: Pki) -> None:
    signer = follower(pki)
    store = pki.store("portal")
    old_kid = signer.kid
    old_token = signer.sign(b"before")
    rotate_member(pki.ca, pki.keys, "portal", passphrase=KEY_PASSPHRASE)
    assert signer.sign(b"x") and signer.kid == old_kid  # not checked yet
    pki.ticker.t += 1.0
    new_token = signer.sign(b"after")
    assert signer.kid != old_kid
    assert signer.kid == JwsVerifier(store).verify(b"after", new_token).kid
    # the old key's signature stays verifiable (its certificate has not expired)
    assert JwsVerifier(store).verify(b"before", old_token).kid == old_kid


def test_reload_hook_switches_at_once(pki: Pki) -> None:
    signer = follower(pki)
    old = signer.kid
    assert signer.reload() is False
    rotate_member(pki.ca, pki.keys, "portal", passphrase=KEY_PASSPHRASE)
    assert signer.reload() is True and signer.kid != old
    key = load_signing_key(pki.keys / "portal.key", KEY_PASSPHRASE)
    assert signer.private_key.public_key() == key.public_key()


def test_a_key_not_trusted_yet_is_not_used(pki: Pki) -> None:
    trusted: set[str] = set()
    signer = follower(pki, accept=lambda kid: kid in trusted)
    old = signer.kid
    rotate_member(pki.ca, pki.keys, "portal", passphrase=KEY_PASSPHRASE)
    assert signer.reload() is False and signer.kid == old  # its certificate is not here yet
    new = JwsVerifier(pki.store("portal")).verify(
        b"x", KeyFileSigner("portal", pki.keys / "portal.key", KEY_PASSPHRASE).sign(b"x")
    ).kid
    trusted.add(new)
    assert signer.reload() is True and signer.kid == new


def test_an_unreadable_new_file_keeps_the_current_key(pki: Pki) -> None:
    signer = follower(pki)
    old = signer.kid
    (pki.keys / "portal.key").write_bytes(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\ngarbage\n")
    assert signer.reload() is False
    assert signer.kid == old and signer.sign(b"x")
    with pytest.raises(SigningError):
        load_signing_key(pki.keys / "portal.key", KEY_PASSPHRASE)
