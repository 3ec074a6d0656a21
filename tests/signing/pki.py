"""A bus CA in a temporary folder, on a clock the test moves by hand (shared by trust tests)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from signing import CertificateAuthority, CertificateTrustStore, issue_member

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
CA_PASSPHRASE = b"ca passphrase for tests"
KEY_PASSPHRASE = b"member key passphrase for tests"


@dataclass
class Clock:
    now: dt.datetime = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class Ticker:
    """A monotonic clock for reload intervals."""

    t: float = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Pki:
    root: Path
    clock: Clock
    ca: CertificateAuthority
    ticker: Ticker = field(default_factory=Ticker)

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    def issue(self, *members: str, days: int = 365) -> None:
        for member in members:
            issue_member(self.ca, self.keys, member, passphrase=KEY_PASSPHRASE, days=days)

    def bundle(self, member: str) -> Path:
        return self.keys / f"{member}.crt"

    def store(self, *members: str, reload_s: float = 5.0) -> CertificateTrustStore:
        return CertificateTrustStore.from_files(
            self.ca.certificate_path,
            {m: self.bundle(m) for m in members},
            self.ca.crl_path,
            clock=self.clock,
            reload_s=reload_s,
            monotonic=self.ticker,
        )


def make_pki(root: Path, name: str = "Interagency bus CA") -> Pki:
    clock = Clock()
    ca = CertificateAuthority.create(root / "ca", CA_PASSPHRASE, name=name, clock=clock)
    return Pki(root, clock, ca)
