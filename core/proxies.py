"""Who the client is behind trusted proxies (``TRUSTED_PROXIES``, no I/O).

From a trusted connection, the client is the right-most ``X-Forwarded-For``
address that is not a trusted proxy; entries left of it, the client's own
writing, are never read, and anything malformed gives the connection's address.

Usage: docs/operations/security.md#client-addresses-behind-a-proxy
"""

import ipaddress
from typing import Dict
from typing import Optional
from typing import Tuple
from typing import Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

#: Most entries of ``X-Forwarded-For`` read from the right: more trusted
#: proxies in a row than any real deployment has give the peer.
MAX_HOPS = 16
#: Connection addresses remembered as trusted or not (beyond it, parsed again).
_PEERS_MAX = 1024


def parse_hop(text: str) -> Optional[IPAddress]:
    """The address of one ``X-Forwarded-For`` entry, or None if it is none.

    Accepts ``1.2.3.4``, ``1.2.3.4:port``, ``2001:db8::1``, ``[2001:db8::1]``
    and ``[2001:db8::1]:port``; an IPv4-mapped IPv6 address gives its IPv4.
    """
    text = text.strip()
    if text.startswith("["):
        text, bracket, port = text[1:].partition("]")
        if not bracket or (port and not _is_port(port)):
            return None
    elif text.count(":") == 1:  # IPv4 with a port; IPv6 has two colons or more
        colon = text.index(":")
        text, port = text[:colon], text[colon:]
        if not _is_port(port):
            return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_port(suffix: str) -> bool:
    """Whether ``suffix`` is ``:`` and a port number."""
    digits = suffix[1:]
    return suffix[:1] == ":" and digits.isascii() and digits.isdigit()


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` is believed.

    Args:
        setting: ``TRUSTED_PROXIES``: comma-separated addresses and networks
            (``10.0.0.5``, ``172.18.0.0/16``, ``::1``); empty: none.

    Raises:
        ValueError: An entry is neither an address nor a network.
    """

    def __init__(self, setting: str):
        networks = []
        for entry in setting.split(","):
            entry = entry.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(
                    f"TRUSTED_PROXIES: {entry!r} is neither an IP address nor a "
                    "network (such as 10.0.0.5 or 172.18.0.0/16)"
                ) from None
        self._networks: Tuple[IPNetwork, ...] = tuple(networks)
        # The peers are the few balancers, and the clients that connect
        # directly: parsing each address costs microseconds per request.
        self._peers: Dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: Optional[IPAddress]) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        return address is not None and any(
            address in network for network in self._networks
        )

    def client(self, peer: str, forwarded_for: Optional[str]) -> str:
        """The client's address, given the connection's and ``X-Forwarded-For``.

        ``peer`` is returned unless it is a trusted proxy and the header names
        an address beyond it; an address found is returned in its normal form.
        """
        if not self._networks or not forwarded_for:
            return peer
        trusted = self._peers.get(peer)
        if trusted is None:
            trusted = self.trusts(parse_hop(peer))
            if len(self._peers) < _PEERS_MAX:
                self._peers[peer] = trusted
        if not trusted:
            return peer
        address = None
        # Past MAX_HOPS, the rest of the header is one entry with commas in
        # it: malformed, so the peer.
        for hop in reversed(forwarded_for.rsplit(",", MAX_HOPS)):
            address = parse_hop(hop)
            if address is None:
                return peer
            if not self.trusts(address):
                break
        # Every entry a trusted proxy: the left-most one is where it started.
        return str(address)
