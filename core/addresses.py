"""Whether an address stays on this machine (the secure defaults depend on it)."""

import ipaddress

_LOOPBACK_NAMES = frozenset(("localhost", "localhost.localdomain", "ip6-localhost"))


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP, brackets allowed) is this machine only.

    ``0.0.0.0``, ``::`` and an empty host mean every interface: not loopback.
    Other names are not resolved and count as beyond loopback.
    """
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
