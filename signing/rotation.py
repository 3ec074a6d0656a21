"""Key rotation on the signing side: a signer that follows its member's key file.

``KeyFileSigner`` signs like ``JwsSigner`` with the key in ``<member>.key`` and checks the file
(mtime, size, inode) at most every ``check_s`` seconds: when ``keys rotate`` has replaced it,
the next signature is made with the new key. It switches only to a key that ``accept(kid)``
approves (the node passes "the trust store can resolve this key id"), so a key whose certificate
has not reached this node yet is not used; until then, and if the new file cannot be read, the
current key stays in use and a warning is logged. Verifiers keep accepting the old key until its
certificate expires (``signing.certificates``): rotation needs no restart and no pause.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from signing.errors import SigningError
from signing.jws import JwsSigner
from signing.keys import PrivateKey, load_signing_key
from signing.revocation import file_stamp

__all__ = ["KeyFileSigner"]

log = logging.getLogger("signing.rotation")


class KeyFileSigner:
    """A ``Signer`` for one member whose key file may be replaced while it runs."""

    def __init__(
        self,
        member: str,
        path: Path,
        passphrase: bytes | None = None,
        *,
        check_s: float = 1.0,
        accept: Callable[[str], bool] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.member = member
        self.path = path
        self._passphrase = passphrase
        self._check_s = check_s
        self._accept = accept
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._stamp = file_stamp(path)
        self._signer = JwsSigner(member, load_signing_key(path, passphrase))
        self._checked = monotonic()

    @property
    def kid(self) -> str:
        return self._signer.kid

    @property
    def private_key(self) -> PrivateKey:
        return self._signer.private_key

    def sign(self, payload: bytes) -> str:
        if self._monotonic() - self._checked >= self._check_s:
            self.reload()
        return self._signer.sign(payload)

    def reload(self) -> bool:
        """Switch to the key now in the file if it changed and is accepted; return whether."""
        with self._lock:
            self._checked = self._monotonic()
            stamp = file_stamp(self.path)
            if stamp == self._stamp:
                return False
            try:
                signer = JwsSigner(self.member, load_signing_key(self.path, self._passphrase))
            except SigningError as exc:
                log.warning(
                    "key of %s not reloaded, the current one stays: %s", self.member, exc.detail
                )
                return False
            if signer.kid == self._signer.kid:
                self._stamp = stamp
                return False
            if self._accept is not None and not self._accept(signer.kid):
                log.warning(
                    "new key %s of %s is not trusted yet; still signing with %s",
                    signer.kid,
                    self.member,
                    self._signer.kid,
                )
                return False  # stamp kept: looked at again at the next check
            self._signer, self._stamp = signer, stamp
            log.info("%s now signs with %s", self.member, signer.kid)
            return True
