"""Which ``Host`` and ``Origin`` headers a server answers (no I/O).

``Host``: the loopback names, ``PUBLIC_BASE_URL``'s host and ``ALLOWED_HOSTS``
(against DNS rebinding); ``Origin`` (the push worker's streams): the worker's
own or one of ``PUSH_ALLOWED_ORIGINS``. A request without the header passes.

Design: docs/design/security.md#the-push-workers-port-streams-origin-host-slow-clients
"""

import re
from collections.abc import Iterable
from typing import Dict
from typing import Optional
from typing import Tuple
from urllib.parse import urlsplit

from core.addresses import is_loopback

_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?")
_IPV6 = re.compile(r"[0-9a-f:.]+")
#: Host headers remembered as allowed (beyond it, the check is recomputed).
_CACHE_MAX = 1024
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
#: The detail of the 400 answered for a Host the server is not known by.
UNKNOWN_HOST = (
    "This server does not answer to that Host header; add the name to "
    "ALLOWED_HOSTS if it is one of its own."
)


def split_host(header: str) -> Optional[Tuple[str, Optional[int]]]:
    """``Host`` as ``(host, port)``, lowercase, brackets off; None if malformed."""
    header = header.strip().lower()
    if header.startswith("["):
        inner, bracket, rest = header[1:].partition("]")
        if not bracket or not _IPV6.fullmatch(inner):
            return None
        host = inner
    else:
        host, colon, port = header.partition(":")
        rest = colon + port
        host = host[:-1] if host.endswith(".") else host
        if not _NAME.fullmatch(host):
            return None
    if not rest:
        return host, None
    digits = rest[1:]
    if rest[0] != ":" or not digits.isdigit() or not digits.isascii():
        return None
    port = int(digits)
    return (host, port) if 0 < port < 65536 else None


def _entry(text: str) -> str:
    """A setting's entry as a comparable host: lowercase, brackets and port off."""
    text = text.strip().lower()
    if text in ("*", ""):
        return text
    dot = "." if text.startswith(".") else ""
    parts = split_host(text[len(dot) :])
    if parts is None:
        raise ValueError(
            f"ALLOWED_HOSTS entries are host names, IP addresses, .domains or *; "
            f"got {text!r}"
        )
    return dot + parts[0]


class AllowedHosts:
    """The ``Host`` headers a server answers.

    Args:
        setting: ``ALLOWED_HOSTS``: comma-separated names, ``.domain``
            suffixes, ``*``.
        public_urls: URLs the server is reached by (``PUBLIC_BASE_URL``).
    """

    def __init__(self, setting: str, public_urls: Iterable[str] = ()):
        entries = {_entry(part) for part in setting.split(",")} - {""}
        for url in public_urls:
            host = urlsplit(url).hostname
            if host:
                entries.add(host.rstrip("."))
        self.any = "*" in entries
        self.suffixes = tuple(sorted(e for e in entries if e.startswith(".")))
        self.names = frozenset(e for e in entries if not e.startswith(".")) - {"*"}
        self._seen: Dict[str, bool] = {}

    def allows(self, header: Optional[str]) -> bool:
        """Whether a request with this ``Host`` header (None: none) is answered."""
        if header is None or self.any:
            return True
        known = self._seen.get(header)
        if known is not None:
            return known
        parts = split_host(header)
        allowed = parts is not None and self._allows_host(parts[0])
        if allowed and len(self._seen) < _CACHE_MAX:
            self._seen[header] = True
        return allowed

    def _allows_host(self, host: str) -> bool:
        if host in self.names or is_loopback(host):
            return True
        return any(host.endswith(s) or host == s[1:] for s in self.suffixes)


def split_origin(origin: str) -> Optional[Tuple[str, str, int]]:
    """``scheme://host[:port]`` as ``(scheme, host, port)``, the default port
    filled in; None for anything else (``null``, a path, another scheme)."""
    try:
        url = urlsplit(origin.strip().lower())
        port = url.port
    except ValueError:
        return None
    if url.scheme not in _DEFAULT_PORTS or not url.hostname:
        return None
    if url.path not in ("", "/") or url.query or url.fragment:
        return None
    return url.scheme, url.hostname, port or _DEFAULT_PORTS[url.scheme]


class AllowedOrigins:
    """The ``Origin`` headers whose pages may open a stream.

    Args:
        setting: ``PUSH_ALLOWED_ORIGINS``: comma-separated origins
            (``https://app.example.com``) besides the server's own.
    """

    def __init__(self, setting: str):
        self.listed = set()
        for part in setting.split(","):
            if not part.strip():
                continue
            key = split_origin(part)
            if key is None:
                raise ValueError(
                    "PUSH_ALLOWED_ORIGINS entries are origins such as "
                    f"https://app.example.com; got {part.strip()!r}"
                )
            self.listed.add(key)

    def allows(self, origin: Optional[str], host: Optional[str]) -> bool:
        """Whether a request with ``origin`` (None: none) sent to ``host`` may open.

        The server's own pages: the origin's host and port are those of the
        ``Host`` header (the port left out there is the origin scheme's
        default, as a browser leaves it out).
        """
        if origin is None:
            return True
        key = split_origin(origin)
        if key is None:
            return False
        if key in self.listed:
            return True
        scheme, origin_host, origin_port = key
        parts = split_host(host or "")
        if parts is None:
            return False
        port = parts[1] or _DEFAULT_PORTS[scheme]
        return (parts[0], port) == (origin_host, origin_port)
