"""The client's address behind trusted proxies (core.proxies)."""

import ipaddress

import pytest

from core.proxies import MAX_HOPS
from core.proxies import TrustedProxies
from core.proxies import parse_hop

BALANCER = "10.0.0.2"


def test_nothing_trusted_by_default_the_header_is_ignored():
    trusted = TrustedProxies("")
    assert not trusted
    assert trusted.client("192.0.2.7", "198.51.100.1") == "192.0.2.7"


def test_a_spoofed_header_from_an_untrusted_peer_is_ignored():
    trusted = TrustedProxies(BALANCER)
    assert trusted.client("192.0.2.7", "198.51.100.1") == "192.0.2.7"
    assert trusted.client("192.0.2.7", BALANCER) == "192.0.2.7"


def test_from_the_balancer_the_client_is_the_right_most_entry():
    trusted = TrustedProxies(BALANCER)
    assert trusted.client(BALANCER, "198.51.100.1") == "198.51.100.1"
    # The client wrote the left-most entries itself: never believed.
    spoofed = "203.0.113.66, 10.0.0.2, 198.51.100.1"
    assert trusted.client(BALANCER, spoofed) == "198.51.100.1"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right():
    trusted = TrustedProxies("10.0.0.0/24, 172.18.0.5")
    chain = "203.0.113.66, 198.51.100.1, 10.0.0.9, 172.18.0.5"
    assert trusted.client(BALANCER, chain) == "198.51.100.1"
    # Every entry a trusted proxy: the left-most one started the chain.
    assert trusted.client(BALANCER, "10.0.0.7, 10.0.0.9") == "10.0.0.7"


def test_a_peer_outside_the_network_is_not_trusted():
    trusted = TrustedProxies("10.0.0.0/24")
    assert trusted.client("10.0.1.2", "198.51.100.1") == "10.0.1.2"
    assert trusted.client("10.0.0.254", "198.51.100.1") == "198.51.100.1"


@pytest.mark.parametrize(
    "header",
    [
        "",
        " ",
        "unknown",
        "198.51.100.1, not-an-ip",
        "198.51.100.1,",
        "198.51.100.1:http",
        "[2001:db8::1",
        "[2001:db8::1]x",
        "999.1.1.1",
        "198.51.100.1 198.51.100.2",
        "\u0661.1.1.1",  # an Arabic-Indic digit
        "_hidden",  # RFC 7239's obfuscated identifier
    ],
)
def test_a_malformed_header_gives_the_peer(header):
    assert TrustedProxies(BALANCER).client(BALANCER, header) == BALANCER


def test_a_malformed_entry_left_of_the_client_is_never_read():
    trusted = TrustedProxies(BALANCER)
    assert trusted.client(BALANCER, "garbage, 198.51.100.1") == "198.51.100.1"


def test_too_many_trusted_hops_give_the_peer():
    trusted = TrustedProxies("10.0.0.0/8")
    within = ", ".join(["198.51.100.1"] + ["10.0.0.9"] * MAX_HOPS)
    assert trusted.client(BALANCER, within) == "198.51.100.1"
    beyond = ", ".join(["198.51.100.1"] + ["10.0.0.9"] * (MAX_HOPS + 1))
    assert trusted.client(BALANCER, beyond) == BALANCER
    # A long header whose right-most entry is the client costs one parse.
    long = ", ".join(["10.0.0.9"] * 1000 + ["198.51.100.1"])
    assert trusted.client(BALANCER, long) == "198.51.100.1"


def test_ipv6_peers_networks_and_entries():
    trusted = TrustedProxies("fd00:1::/64")
    peer = "fd00:1::2"
    assert trusted.client(peer, "2001:DB8::0:1") == "2001:db8::1"
    assert trusted.client(peer, "[2001:db8::1]:4711") == "2001:db8::1"
    assert trusted.client(peer, "[2001:db8::1]") == "2001:db8::1"
    assert trusted.client(peer, "198.51.100.1, fd00:1::9") == "198.51.100.1"
    assert trusted.client("fd00:2::2", "2001:db8::1") == "fd00:2::2"


def test_an_ipv4_mapped_peer_or_entry_counts_as_ipv4():
    trusted = TrustedProxies("10.0.0.0/24")
    # A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
    assert trusted.client("::ffff:10.0.0.2", "198.51.100.1") == "198.51.100.1"
    assert trusted.client(BALANCER, "::ffff:198.51.100.1") == "198.51.100.1"


def test_entries_with_ports_and_spaces():
    trusted = TrustedProxies(BALANCER)
    assert trusted.client(BALANCER, "  198.51.100.1:51234 ") == "198.51.100.1"
    assert trusted.client(BALANCER, "198.51.100.1,10.0.0.2") == "198.51.100.1"


def test_parse_hop():
    assert parse_hop("198.51.100.1") == ipaddress.ip_address("198.51.100.1")
    assert parse_hop("[::1]:80") == ipaddress.ip_address("::1")
    assert parse_hop("[::1]:") is None
    assert parse_hop("1.2.3.4:") is None
    assert parse_hop("") is None


@pytest.mark.parametrize("setting", ["10.0.0.0/33", "balancer", "10.0.0.1-10.0.0.9"])
def test_a_bad_setting_is_refused_with_its_entry(setting):
    with pytest.raises(ValueError, match="TRUSTED_PROXIES: .*" + setting[:5]):
        TrustedProxies(f"127.0.0.1, {setting}")


def test_a_network_given_with_host_bits_is_the_network():
    trusted = TrustedProxies("10.0.0.7/24")
    assert trusted.client("10.0.0.200", "198.51.100.1") == "198.51.100.1"


def test_answers_stay_right_past_the_remembered_peers():
    trusted = TrustedProxies("10.0.0.0/16")
    for n in range(1100):  # more peers than are remembered
        peer = f"10.0.{n // 256}.{n % 256}"
        assert trusted.client(peer, "198.51.100.1") == "198.51.100.1"
        outsider = f"192.0.{n // 256}.{n % 256}"
        assert trusted.client(outsider, "198.51.100.1") == outsider
