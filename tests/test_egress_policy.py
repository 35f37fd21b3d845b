"""The egress policy as a pure function: address classes, numeric host forms, the allow-list."""

from __future__ import annotations

import ipaddress

import pytest

from screenshots.core.errors import ConfigurationError
from screenshots.core.settings import load_settings
from screenshots.egress.policy import EgressPolicy, classify, parse_allow_list, parse_ip_host

DEFAULT = EgressPolicy()


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        # IPv4
        ("0.0.0.0", "0.0.0.0 is unspecified (this network)"),
        ("0.1.2.3", "0.1.2.3 is unspecified (this network)"),
        ("10.0.0.5", "10.0.0.5 is private"),
        ("172.16.0.1", "172.16.0.1 is private"),
        ("172.31.255.255", "172.31.255.255 is private"),
        ("192.168.1.1", "192.168.1.1 is private"),
        ("100.64.0.1", "100.64.0.1 is carrier-grade NAT (shared address space)"),
        ("100.100.100.200", "100.100.100.200 is carrier-grade NAT (a cloud metadata service)"),
        ("127.0.0.1", "127.0.0.1 is loopback"),
        ("127.255.255.254", "127.255.255.254 is loopback"),
        ("169.254.169.254", "169.254.169.254 is link-local (the cloud metadata service)"),
        ("169.254.170.2", "169.254.170.2 is link-local (the container metadata service)"),
        ("169.254.1.1", "169.254.1.1 is link-local"),
        ("192.0.0.8", "192.0.0.8 is reserved (IETF protocol assignments)"),
        ("192.0.2.1", "192.0.2.1 is reserved for documentation"),
        ("198.51.100.7", "198.51.100.7 is reserved for documentation"),
        ("203.0.113.9", "203.0.113.9 is reserved for documentation"),
        ("198.18.0.1", "198.18.0.1 is reserved for benchmarking"),
        ("192.88.99.1", "192.88.99.1 is reserved (6to4 relay anycast)"),
        ("224.0.0.1", "224.0.0.1 is multicast"),
        ("239.255.255.250", "239.255.255.250 is multicast"),
        ("240.0.0.1", "240.0.0.1 is reserved"),
        ("255.255.255.255", "255.255.255.255 is the broadcast address"),
        # IPv6
        ("::", ":: is unspecified"),
        ("::1", "::1 is loopback"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1 is IPv4-mapped 127.0.0.1, which is loopback"),
        (
            "::ffff:169.254.169.254",
            "::ffff:a9fe:a9fe is IPv4-mapped 169.254.169.254, which is "
            "link-local (the cloud metadata service)",
        ),
        ("::ffff:10.0.0.5", "::ffff:a00:5 is IPv4-mapped 10.0.0.5, which is private"),
        ("::127.0.0.1", "::7f00:1 is IPv4-compatible (deprecated)"),
        ("64:ff9b::7f00:1", "64:ff9b::7f00:1 is NAT64, reaching 127.0.0.1"),
        ("64:ff9b::808:808", "64:ff9b::808:808 is NAT64, reaching 8.8.8.8"),
        ("64:ff9b:1::a9fe:a9fe", "64:ff9b:1::a9fe:a9fe is NAT64 (local use)"),
        ("100::1", "100::1 is reserved (discard only)"),
        ("2001::1", "2001::1 is Teredo"),
        ("2001:db8::1", "2001:db8::1 is reserved for documentation"),
        ("2001:10::1", "2001:10::1 is reserved (IETF protocol assignments)"),
        ("2002:7f00:1::1", "2002:7f00:1::1 is 6to4, reaching 127.0.0.1"),
        ("2002:808:808::1", "2002:808:808::1 is 6to4, reaching 8.8.8.8"),
        ("3fff::1", "3fff::1 is reserved for documentation"),
        ("fc00::1", "fc00::1 is unique-local (private)"),
        ("fd12:3456::1", "fd12:3456::1 is unique-local (private)"),
        ("fd00:ec2::254", "fd00:ec2::254 is unique-local (the cloud metadata service)"),
        ("fe80::1", "fe80::1 is link-local"),
        ("fe80::1%eth0", "fe80::1 is link-local"),
        ("fec0::1", "fec0::1 is site-local (deprecated)"),
        ("ff02::1", "ff02::1 is multicast"),
        ("4000::1", "4000::1 is reserved (not a global unicast address)"),
    ],
)
def test_refused(address: str, reason: str) -> None:
    decision = DEFAULT.check(address)
    assert not decision.allowed
    assert decision.reason == reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "93.184.215.14",
        "1.1.1.1",
        "100.63.255.255",
        "100.128.0.0",
        "172.32.0.1",
        "2606:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    decision = DEFAULT.check(address)
    assert decision.allowed
    assert decision.reason.endswith(" is public")
    assert classify(ipaddress.ip_address(address)) is None


def test_mapped_address_is_dialled_as_ipv4() -> None:
    decision = DEFAULT.check("::ffff:8.8.8.8")
    assert decision.connect_address == ipaddress.IPv4Address("8.8.8.8")
    assert DEFAULT.check("8.8.4.4").connect_address == ipaddress.IPv4Address("8.8.4.4")


# -- numeric forms of a host -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),  # decimal
        ("0x7f000001", "127.0.0.1"),  # hex
        ("0X7F000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("0177.0000.0000.0001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),  # short
        ("127.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),  # trailing dot
        ("0", "0.0.0.0"),
        ("2852039166", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("::ffff:7f00:1", "::ffff:127.0.0.1"),
        ("[64:ff9b::7f00:1]", "64:ff9b::7f00:1"),
    ],
)
def test_numeric_hosts_are_the_addresses_they_stand_for(host: str, address: str) -> None:
    parsed = parse_ip_host(host)
    assert parsed == ipaddress.ip_address(address)
    assert not DEFAULT.check(parsed).allowed


@pytest.mark.parametrize("host", ["example.com", "localhost", "127.0.0.1.nip.io", "0x.example"])
def test_domain_names_are_not_addresses(host: str) -> None:
    assert parse_ip_host(host) is None


@pytest.mark.parametrize(
    "host", ["256.0.0.1", "1.2.3.4.5", "0x100000000", "1.2.3.09", "4294967296"]
)
def test_invalid_numeric_hosts_are_refused(host: str) -> None:
    with pytest.raises(ValueError):
        parse_ip_host(host)


# -- the allow-list ----------------------------------------------------------------------------


def test_allow_list_parsing() -> None:
    assert parse_allow_list(None) == ()
    assert parse_allow_list(" ") == ()
    assert parse_allow_list("127.0.0.1, 10.0.0.0/8,,[::1], fd00::/8") == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("fd00::/8"),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.5/8", "'10.0.0.5/8' has host bits set: did you mean 10.0.0.0/8?"),
        ("intranet", "'intranet' is not an IP address or CIDR network"),
        ("10.0.0.0/33", "'10.0.0.0/33' is not an IP address or CIDR network"),
        ("127.0.0.1 10.0.0.1", "'127.0.0.1 10.0.0.1' is not an IP address or CIDR network"),
    ],
)
def test_bad_allow_list(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_allow_list(text)
    assert str(caught.value) == message
    with pytest.raises(ConfigurationError) as config:
        load_settings({"SCREENSHOT_EGRESS_ALLOW": text})
    assert str(config.value) == f"SCREENSHOT_EGRESS_ALLOW: {message}"


def test_allow_list_exempts_addresses_and_mapped_forms() -> None:
    policy = EgressPolicy(parse_allow_list("10.1.0.0/16,127.0.0.1"))
    assert policy.check("10.1.2.3").allowed
    assert policy.check("10.1.2.3").reason == "10.1.2.3 is allowed by SCREENSHOT_EGRESS_ALLOW"
    assert policy.check("::ffff:10.1.2.3").allowed
    assert policy.check("127.0.0.1").allowed
    assert not policy.check("10.2.0.1").allowed
    assert not policy.check("127.0.0.2").allowed
    assert not policy.check("::1").allowed
    assert not policy.check("64:ff9b::a01:203").allowed  # NAT64 of an allowed address: no


def test_settings() -> None:
    settings = load_settings({})
    assert settings.egress_enabled is True
    assert settings.egress_allow == ()
    assert load_settings({"SCREENSHOT_EGRESS_POLICY": "off"}).egress_enabled is False
    assert load_settings({"SCREENSHOT_EGRESS_POLICY": "ON"}).egress_enabled is True
    with pytest.raises(ConfigurationError, match="SCREENSHOT_EGRESS_POLICY must be on or off"):
        load_settings({"SCREENSHOT_EGRESS_POLICY": "maybe"})
