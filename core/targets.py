"""Where outbound URLs may point: public hosts only, unless allowed by name.

:class:`Targets` is the one rule for links and webhook subscriptions: refused
networks (:data:`REFUSED_NETWORKS`) and local names (:data:`LOCAL_SUFFIXES`),
other names checked at each connect (:meth:`Targets.address_allowed`), and the
exceptions of ``ALLOWED_PRIVATE_TARGETS``.

Design: docs/design/security.md#outbound-targets-no-ssrf
"""

import ipaddress
from collections.abc import Iterable
from typing import FrozenSet
from typing import Tuple
from typing import Union

from core.urls import UnsafeUrl
from core.urls import host_of

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

#: Networks no outbound URL may reach (IANA special-purpose registries).
REFUSED_NETWORKS: Tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(net)
    for net in (
        # IPv4
        "0.0.0.0/8",  # "this network", the unspecified address
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (CGNAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local (cloud metadata at 169.254.169.254)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast 255.255.255.255
        # IPv6: everything outside global unicast, and the parts of it that
        # are special or carry an IPv4 address inside.
        "::/3",  # unspecified, loopback, IPv4-mapped and -compatible, NAT64, ...
        "4000::/2",
        "8000::/1",  # unique-local fc00::/7, link-local fe80::/10, multicast ff00::/8
        "2001::/23",  # IETF protocol assignments, Teredo 2001::/32 included
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4 (an IPv4 address inside)
        "3fff::/20",  # documentation
    )
)

#: Special-use names of the local machine or network (RFC 6761, 6762, 8375).
LOCAL_SUFFIXES = ("localhost", "local", "internal", "home.arpa", "localdomain")


class RefusedTarget(UnsafeUrl):
    """The URL or address points where outbound requests may not go."""


def parse_address(text: str) -> IPAddress:
    """An IP address from ``text`` (``[v6]`` brackets and a ``%zone`` allowed)."""
    text = text.strip("[]").split("%", 1)[0]
    return ipaddress.ip_address(text)


def _host_name(host: str) -> str:
    return host.strip().lower().rstrip(".")


def _allowed_name(entry: str) -> str:
    try:
        if "/" in entry or ":" in entry:
            raise UnsafeUrl(entry)
        return _host_name(host_of("http://" + entry))
    except UnsafeUrl:
        raise ValueError(
            f"ALLOWED_PRIVATE_TARGETS: {entry!r} is neither a network nor a host name"
        ) from None


def is_local_name(host: str) -> bool:
    """Whether ``host`` is a special-use local name (``localhost``, ``x.local``)."""
    name = _host_name(host)
    return any(
        name == suffix or name.endswith("." + suffix) for suffix in LOCAL_SUFFIXES
    )


def is_refused_address(address: IPAddress) -> bool:
    """Whether ``address`` is in one of :data:`REFUSED_NETWORKS`."""
    return any(address in network for network in REFUSED_NETWORKS)


def _as_address(host: str):
    try:
        return parse_address(host)
    except ValueError:
        return None


class Targets:
    """The outbound-URL rule, with its configured exceptions.

    Args:
        allowed: ``ALLOWED_PRIVATE_TARGETS``: host names and networks (CIDR or
            single addresses), separated by commas or spaces; ``*`` allows all.

    Raises:
        ValueError: an entry is neither a network nor a host name.
    """

    def __init__(self, allowed: Union[str, Iterable[str]] = ""):
        entries = (
            allowed.replace(",", " ").split() if isinstance(allowed, str) else allowed
        )
        names, networks = set(), []
        self.allow_all = False
        for entry in entries:
            if entry == "*":
                self.allow_all = True
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            names.add(_allowed_name(entry))
        self.names: FrozenSet[str] = frozenset(names)
        self.networks: Tuple[IPNetwork, ...] = tuple(networks)

    def check_url(self, url: str, own_hosts: Iterable[str] = ()) -> None:
        """Refuse (RefusedTarget) a normalised http(s) URL that may not be targeted.

        ``own_hosts``: canonical hosts of this API that the URL may not name,
        on any port and whatever ``allowed`` says (links: a link to the
        shortener itself could redirect in a loop).
        """
        host = host_of(url)
        if any(same_machine(host, own) for own in own_hosts):
            raise RefusedTarget("The URL points at this API itself; not accepted.")
        self.check_host(host)

    def check_host(self, host: str) -> None:
        """Refuse (RefusedTarget) a URL's canonical host that may not be targeted."""
        if self.allow_all or _host_name(host) in self.names:
            return
        address = _as_address(host)
        if address is None:
            if is_local_name(host):
                raise RefusedTarget(
                    f"{host} is a name of the local machine or network; "
                    "such targets are not accepted."
                )
            return  # a public name: its addresses are checked when it is used
        if not self.address_allowed(host, address):
            raise RefusedTarget(
                f"{address} is a loopback, private, link-local or reserved "
                "address; such targets are not accepted."
            )

    def address_allowed(self, host: str, address: Union[str, IPAddress]) -> bool:
        """Whether a request for ``host`` may connect to ``address`` (resolved)."""
        if self.allow_all or _host_name(host) in self.names:
            return True
        if isinstance(address, str):
            address = parse_address(address)
        if any(address in network for network in self.networks):
            return True
        return not is_refused_address(address)


def same_machine(host: str, other: str) -> bool:
    """Whether two canonical hosts surely name one machine: equal, or both local.

    ``localhost``, ``127.0.0.1``, ``[::1]`` and ``0.0.0.0`` all reach the
    machine they are used on, so a shortener at one of them is at all of them.
    """
    if _host_name(host) == _host_name(other):
        return True
    return _is_this_machine(host) and _is_this_machine(other)


def _is_this_machine(host: str) -> bool:
    if _host_name(host) == "localhost" or _host_name(host).endswith(".localhost"):
        return True
    address = _as_address(host)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified
