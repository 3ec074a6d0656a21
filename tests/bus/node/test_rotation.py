"""Rotation without downtime: two nodes exchange signed envelopes non-stop while both members'
keys are rotated; nothing is refused, the new keys sign within the check interval, and what the
old keys signed stays verifiable until their certificates expire."""

from __future__ import annotations

import base64
import datetime as dt
import json
import textwrap
import threading
import time
from pathlib import Path

import pytest

from bus.config.loader import load_settings
from bus.core.envelope import Envelope, Kind, new_id
from bus.core.errors import BusError, CertificateUntrusted
from bus.core.seal import Seal
from bus.node.trust import load_signers, load_trust
from signing import rotate_member
from tests.signing.pki import KEY_PASSPHRASE, Pki, make_pki

SERVICE = "civil-registry/residence/v1"


pytestmark = pytest.mark.usefixtures("no_bus_environment")


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    pki = make_pki(tmp_path)
    pki.issue("portal", "civil-registry")
    return pki


def node(pki: Pki, hosts: str) -> Seal:
    path = pki.root / f"{hosts}.yaml"
    path.write_text(textwrap.dedent(f"""\
        allow_plain_secrets: true  # a test's key passphrase
        node: {{hosts: [{hosts}], keys_dir: keys, key_passphrase: "{KEY_PASSPHRASE.decode()}"}}
        trust: {{ca: ca/ca.crt, crl: ca/crl.pem, reload_s: 0.05}}
        members:
          portal: {{certificate: keys/portal.crt}}
          civil-registry: {{certificate: keys/civil-registry.crt}}
        """))
    settings = load_settings(path)
    trust = load_trust(settings, pki.clock)
    return Seal(load_signers(settings, trust), trust, clock=pki.clock)


def request(pki: Pki) -> Envelope:
    now = pki.clock()
    return Envelope(
        id=new_id(), correlation=new_id(), client="portal", service=SERVICE, user="officer-17",
        purpose="child-benefit", issued_at=now, expires_at=now + dt.timedelta(seconds=5),
        kind=Kind.request, payload={"pinfl": "31505861234567"},
    )


def kid(envelope: Envelope) -> str:
    assert envelope.signature is not None
    header = envelope.signature.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def test_exchanges_go_on_while_keys_rotate(pki: Pki) -> None:
    gateway, provider = node(pki, "portal"), node(pki, "civil-registry")
    failures: list[BusError] = []
    seen_kids: set[str] = set()
    old_answers: list[Envelope] = []
    stop = threading.Event()

    def exchange_forever() -> None:
        while not stop.is_set():
            try:
                asked = provider.verify(gateway.sign(request(pki)))
                answer = gateway.verify(
                    provider.sign(asked.reply(Kind.response, {"ok": True}, now=pki.clock()))
                )
                seen_kids.update({kid(asked), kid(answer)})
                if len(old_answers) < 1:
                    old_answers.append(answer)
            except BusError as exc:
                failures.append(exc)

    worker = threading.Thread(target=exchange_forever)
    worker.start()
    try:
        time.sleep(0.1)
        before = set(seen_kids)
        for member in ("civil-registry", "portal"):
            rotate_member(pki.ca, pki.keys, member, passphrase=KEY_PASSPHRASE)
        time.sleep(0.3)  # several check intervals (0.05 s)
        seen_kids.clear()
        time.sleep(0.1)
        recent = set(seen_kids)
    finally:
        stop.set()
        worker.join()
    assert failures == []
    assert len(before) == 2 and len(recent) == 2 and before.isdisjoint(recent)
    # In transit, the old key's signatures are accepted until its certificate expires ...
    old = old_answers[0]
    assert gateway.verify(old) == old
    pki.clock.advance(days=366)
    with pytest.raises(CertificateUntrusted) as info:
        gateway.verify(old)
    assert info.value.reason == "expired"
    # ... while a saved answer stays what it was: signed while the certificate was valid.
    assert gateway.verify_issued(old).member == "civil-registry"
