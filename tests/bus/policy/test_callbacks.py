"""The callback policy: which X-Bus-Callback URLs are taken, and which addresses are reached."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bus.config.callbacks import CallbackSettings
from bus.config.settings import MemberSettings
from bus.core.errors import CallbackRefused, MalformedRequest
from bus.policy.callbacks import CallbackPolicy


def policy(resolved: dict[str, list[str]] | None = None, **settings: Any) -> CallbackPolicy:
    async def resolve(host: str, port: int) -> list[str]:
        if resolved is None or host not in resolved:
            raise OSError(f"{host} does not resolve")
        return resolved[host]

    settings.setdefault("allowed_hosts", ["hooks.portal.example.gov", "*.agency.example.uz"])
    return CallbackPolicy(CallbackSettings(**settings), resolve=resolve)


def reason(call: Any) -> str:
    with pytest.raises(CallbackRefused) as caught:
        call()
    assert caught.value.status == 422 and "X-Bus-Callback" in caught.value.detail
    return caught.value.reason


def test_the_default_refuses_every_callback() -> None:
    settings = CallbackSettings()
    assert (settings.allowed_hosts, settings.require_https, settings.allow_private) == (
        [], True, False)
    refuse = CallbackPolicy(settings)
    assert reason(lambda: refuse.check("https://hooks.portal.example.gov/x")) == "host-not-allowed"


@pytest.mark.parametrize("url", [
    "https://hooks.portal.example.gov/hook?x=1",
    "https://HOOKS.Portal.example.gov./hook",
    "https://hooks.portal.example.gov:8443/hook",
    "https://a.agency.example.uz/hook",
    "https://deep.a.agency.example.uz/hook",
])
def test_listed_hosts_and_names_under_a_listed_domain_are_taken(url: str) -> None:
    assert policy().check(url)


@pytest.mark.parametrize("url", [
    "https://agency.example.uz/hook",  # *.domain is not the domain itself
    "https://evilagency.example.uz/hook",
    "https://agency.example.uz.evil.org/hook",
    "https://hooks.portal.example.gov.evil.org/hook",
    "https://127.0.0.1/hook",
    "https://[::1]/hook",
])
def test_other_hosts_are_refused(url: str) -> None:
    assert reason(lambda: policy().check(url)) == "host-not-allowed"


def test_https_credentials_and_malformed_urls() -> None:
    assert reason(lambda: policy().check("http://hooks.portal.example.gov/")) == "https-required"
    assert policy(require_https=False).check("http://hooks.portal.example.gov/")
    assert reason(
        lambda: policy().check("https://hooks.portal.example.gov@evil.org/")
    ) == "credentials"
    for bad in ("file:///etc/passwd", "gopher://hooks.portal.example.gov/", "https://",
                "not a url", "https://a:b:c/", "https://hooks.portal.example.gov/" + "x" * 2000):
        with pytest.raises(MalformedRequest):
            policy().check(bad)


def test_an_ip_host_must_be_listed_and_public_or_in_an_allowed_network() -> None:
    listed = policy(allowed_hosts=["8.8.8.8", "10.20.1.1", "127.0.0.1"])
    assert listed.check("https://8.8.8.8/")
    assert reason(lambda: listed.check("https://10.20.1.1/")) == "address-refused"
    assert reason(lambda: listed.check("https://127.0.0.1/")) == "address-refused"
    network = policy(allowed_hosts=["10.20.1.1"], allowed_networks=["10.20.0.0/16"])
    assert network.check("https://10.20.1.1/")


@pytest.fixture
def public() -> Iterator[CallbackPolicy]:
    yield policy()


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "239.255.255.250", "::1", "fe80::1", "fc00::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::1", "64:ff9b::a00:1", "::",
])
def test_non_public_addresses_are_refused(public: CallbackPolicy, address: str) -> None:
    assert not public.address_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_public_addresses_are_reached(public: CallbackPolicy, address: str) -> None:
    assert public.address_allowed(ipaddress.ip_address(address))


def test_allowed_networks_and_allow_private() -> None:
    network = policy(allowed_networks=["10.20.0.0/16"])
    assert network.address_allowed(ipaddress.ip_address("10.20.3.4"))
    assert not network.address_allowed(ipaddress.ip_address("10.21.3.4"))
    assert not network.address_allowed(ipaddress.ip_address("127.0.0.1"))
    loose = policy(allow_private=True)
    assert loose.address_allowed(ipaddress.ip_address("127.0.0.1"))
    assert not loose.address_allowed(ipaddress.ip_address("224.0.0.1"))  # never multicast


def test_delivery_goes_to_the_checked_address_with_the_original_host() -> None:
    p = policy({"hooks.portal.example.gov": ["8.8.8.8", "2001:4860:4860::8888"]})
    target = asyncio.run(p.target("https://hooks.portal.example.gov:8443/hook?x=1"))
    assert str(target.url) == "https://8.8.8.8:8443/hook?x=1"
    assert target.headers == {"Host": "hooks.portal.example.gov:8443"}
    assert target.extensions == {"sni_hostname": "hooks.portal.example.gov"}  # TLS checks it
    plain = policy({"hooks.portal.example.gov": ["2001:4860:4860::8888"]}, require_https=False)
    target = asyncio.run(plain.target("http://hooks.portal.example.gov/hook"))
    assert str(target.url) == "http://[2001:4860:4860::8888]/hook" and not target.extensions


def test_a_name_resolving_to_any_inner_address_is_refused_at_delivery() -> None:
    """DNS rebinding: the name passed at submit time; what it resolves to now is checked."""
    p = policy({"hooks.portal.example.gov": ["8.8.8.8", "127.0.0.1"]})
    assert p.check("https://hooks.portal.example.gov/hook")
    assert reason(
        lambda: asyncio.run(p.target("https://hooks.portal.example.gov/hook"))
    ) == "address-refused"


def test_a_name_that_does_not_resolve_is_an_os_error_to_retry() -> None:
    with pytest.raises(OSError):
        asyncio.run(policy({}).target("https://hooks.portal.example.gov/hook"))


@pytest.mark.parametrize("entry", ["*", "*.gov", "exa mple.org", "http://x.org", "a..b", "-a.org"])
def test_bad_allowed_hosts_are_config_errors(entry: str) -> None:
    with pytest.raises(ValidationError):
        CallbackSettings(allowed_hosts=[entry])


def test_a_member_with_its_own_hosts_may_name_only_those() -> None:
    # the node lists both receivers; the portal's results may still go to the portal's only
    scoped = CallbackPolicy(
        CallbackSettings(allowed_hosts=["hooks.portal.example.gov", "hooks.tax.example.uz"]),
        member_hosts={"portal": ["hooks.portal.example.gov"], "tax": ["*.tax.example.uz"]},
    )
    assert scoped.check("https://hooks.portal.example.gov/h", client="portal")
    with pytest.raises(CallbackRefused) as caught:
        scoped.check("https://hooks.tax.example.uz/h", client="portal")
    assert "members.portal.callback_hosts" in caught.value.detail
    assert scoped.check("https://hooks.tax.example.uz/h", client="tax")
    assert scoped.check("https://a.b.tax.example.uz/h", client="tax")  # its list, not the node's
    assert reason(lambda: scoped.check("https://hooks.portal.example.gov/h", client="tax")) == (
        "host-not-allowed")
    # a member without its own list: the node's
    assert scoped.check("https://hooks.tax.example.uz/h", client="cadastre")
    nowhere = CallbackPolicy(CallbackSettings(allowed_hosts=["hooks.portal.example.gov"]),
                             member_hosts={"portal": []})
    assert reason(lambda: nowhere.check("https://hooks.portal.example.gov/h", client="portal")
                  ) == "host-not-allowed"


def test_bad_member_callback_hosts_are_config_errors() -> None:
    with pytest.raises(ValidationError, match="callback_hosts"):
        MemberSettings(public_key=Path("p.pub"), callback_hosts=["*.gov"])
    member = MemberSettings(public_key=Path("p.pub"), callback_hosts=["Hooks.Example.ORG."])
    assert member.callback_hosts == ["hooks.example.org"]


def test_allowed_hosts_are_normalised() -> None:
    settings = CallbackSettings(allowed_hosts=["Hooks.Example.ORG.", "[::1]", "*.Example.org"])
    assert settings.allowed_hosts == ["hooks.example.org", "::1", "*.example.org"]
