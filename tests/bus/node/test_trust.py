"""A node's trust from its settings: certified and bare-key members, its own keys checked."""

from __future__ import annotations

import base64
import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest

from bus.config.loader import ConfigError, load_settings
from bus.config.settings import BusSettings
from bus.core.envelope import Envelope, Kind, new_id
from bus.core.errors import SignatureInvalid
from bus.core.seal import Seal
from bus.node.trust import load_signers, load_trust
from signing import JwsSigner, SigningError, generate_member_key, load_signing_key
from tests.signing.pki import KEY_PASSPHRASE, T0, Pki, make_pki

SERVICE = "civil-registry/residence/v1"


pytestmark = pytest.mark.usefixtures("no_bus_environment")


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    pki = make_pki(tmp_path)
    pki.issue("portal", "civil-registry")
    generate_member_key(pki.keys, "tax")  # a member still on a bare Ed25519 key
    return pki


def config(pki: Pki, hosts: str = "[portal]", members: str = "") -> Path:
    text = textwrap.dedent(f"""\
        allow_plain_secrets: true  # a test's key passphrase
        node:
          hosts: {hosts}
          keys_dir: keys
          key_passphrase: "{KEY_PASSPHRASE.decode()}"
        trust:
          ca: ca/ca.crt
          crl: ca/crl.pem
        members:
          portal: {{certificate: keys/portal.crt}}
          civil-registry: {{certificate: keys/civil-registry.crt}}
          tax: {{public_key: keys/tax.pub}}
        """) + members
    path = pki.root / "bus.yaml"
    path.write_text(text)
    return path


def seal(settings: BusSettings, pki: Pki) -> Seal:
    trust = load_trust(settings, pki.clock)
    return Seal(load_signers(settings, trust), trust, clock=pki.clock)


def request(client: str = "portal") -> Envelope:
    return Envelope(
        id=new_id(), correlation=new_id(), client=client, service=SERVICE, user="officer-17",
        purpose="child-benefit", subject=None, issued_at=T0,
        expires_at=T0 + dt.timedelta(seconds=5), kind=Kind.request, payload={"pinfl": "x"},
    )


def test_certified_members_sign_and_verify_through_the_node_trust(pki: Pki) -> None:
    settings = load_settings(config(pki, hosts="[portal, civil-registry, tax]"))
    node = seal(settings, pki)
    signed = node.sign(request())
    assert signed.signature is not None
    header = signed.signature.split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"] == "ES256"
    assert node.verify(signed) == signed
    reply = node.sign(signed.reply(Kind.response, {"ok": True}, now=T0))
    assert node.verify(reply) == reply
    # the member on a bare key signs EdDSA and is verified through its public key
    from_tax = node.sign(request(client="tax"))
    assert node.verify(from_tax) == from_tax
    assert load_trust(settings, pki.clock).members() == {"portal", "civil-registry", "tax"}


def test_a_bare_key_cannot_pass_for_a_certified_member(pki: Pki) -> None:
    """The kid names the member: a certified member's id is never looked up among bare keys."""
    settings = load_settings(config(pki, hosts="[tax]"))
    node = seal(settings, pki)
    tax_key = load_signing_key(pki.keys / "tax.key")
    envelope = request(client="portal")
    # The tax's trusted Ed25519 key, relabelled as the portal's: not found among certificates.
    relabelled = JwsSigner("portal", tax_key).sign(envelope.signing_input())
    with pytest.raises(SignatureInvalid) as info:
        node.verify(envelope.with_signature(relabelled))
    assert info.value.reason == "unknown-key"
    # Signed as itself, the tax is trusted, but is not the portal.
    honest = JwsSigner("tax", tax_key).sign(envelope.signing_input())
    with pytest.raises(SignatureInvalid) as info:
        node.verify(envelope.with_signature(honest))
    assert info.value.reason == "wrong-signer"


def test_node_refuses_to_start_with_a_revoked_own_key(pki: Pki) -> None:
    settings = load_settings(config(pki))
    pki.ca.revoke(pki.ca.find("portal")[0].serial_number)
    with pytest.raises(SigningError, match="hosted member 'portal'") as info:
        seal(settings, pki)
    assert info.value.reason == "revoked"


def test_node_refuses_to_start_with_an_expired_own_key(pki: Pki) -> None:
    settings = load_settings(config(pki))
    pki.clock.advance(days=400)
    with pytest.raises(SigningError, match="expired"):
        seal(settings, pki)


def test_encrypted_keys_need_the_passphrase(pki: Pki) -> None:
    text = config(pki).read_text().replace(f'  key_passphrase: "{KEY_PASSPHRASE.decode()}"\n', "")
    path = pki.root / "bus.yaml"
    path.write_text(text)
    settings = load_settings(path)
    with pytest.raises(SigningError, match="no passphrase"):
        seal(settings, pki)


def test_the_passphrase_comes_from_the_environment(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = config(pki).read_text().replace(f'  key_passphrase: "{KEY_PASSPHRASE.decode()}"\n', "")
    path = pki.root / "bus.yaml"
    path.write_text(text)
    monkeypatch.setenv("BUS_NODE__KEY_PASSPHRASE", KEY_PASSPHRASE.decode())
    settings = load_settings(path)
    assert seal(settings, pki).hosts("portal")
    assert KEY_PASSPHRASE.decode() not in repr(settings)


# --- configuration ----------------------------------------------------------------------------


def problems(path: Path) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return {p.path: p.message for p in info.value.problems}


def test_paths_are_resolved_against_the_config_folder(pki: Pki) -> None:
    settings = load_settings(config(pki))
    assert settings.trust.ca == pki.root / "ca" / "ca.crt"
    assert settings.members["portal"].certificate == pki.root / "keys" / "portal.crt"


def test_a_certificate_member_needs_the_ca_and_crl(pki: Pki) -> None:
    path = config(pki)
    path.write_text(path.read_text().replace("  ca: ca/ca.crt\n", ""))
    found = problems(path)
    assert "trust.ca" in found and "required when a member names a certificate" in found["trust.ca"]


def test_missing_certificate_and_crl_files(pki: Pki) -> None:
    pki.bundle("civil-registry").unlink()
    pki.ca.crl_path.unlink()
    found = problems(config(pki))
    assert "keys issue civil-registry" in found["members.civil-registry.certificate"]
    assert "does not exist" in found["trust.crl"]


def test_a_member_names_one_way_of_trust(pki: Pki) -> None:
    path = config(pki)
    path.write_text(path.read_text().replace(
        "tax: {public_key: keys/tax.pub}",
        "tax: {public_key: keys/tax.pub, certificate: keys/portal.crt}",
    ))
    assert "exactly one" in problems(path)["members.tax"]
    path.write_text(path.read_text().replace(
        "tax: {public_key: keys/tax.pub, certificate: keys/portal.crt}", "tax: {name: Tax}"
    ))
    assert "exactly one" in problems(path)["members.tax"]


def test_a_revoked_member_makes_only_the_nodes_hosting_it_unready(pki: Pki) -> None:
    settings = load_settings(config(pki, hosts="[portal]"))
    configured = set(settings.members)
    trust = load_trust(settings, pki.clock)
    assert trust.readiness(configured, {"portal"}) == "3 members"
    pki.ca.revoke(pki.ca.find("civil-registry")[0].serial_number)
    trust = load_trust(settings, pki.clock)  # the new CRL, as a reload brings it
    assert trust.readiness(configured, {"portal"}) == "2 members; not trusted: civil-registry"
    with pytest.raises(LookupError, match="hosted civil-registry"):
        trust.readiness(configured, {"portal", "civil-registry"})
