"""Safe outbound URLs: validation and normalisation of http(s) links.

:func:`normalize_url` accepts only what a browser would open as an http(s)
URL with a host and returns it in one canonical, pure-ASCII form; request
schemas use it through ``web.fields.SafeUrl``.

Design: docs/design/security.md#how-a-url-is-normalised
"""

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from typing import Optional
from urllib.parse import quote
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import idna

MAX_LENGTH = 2048
SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# "example.com:8080/x" has a port, not a scheme named "example.com".
_PORT_AFTER_COLON = re.compile(r"\d+(?:[/?#]|$)")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Characters RFC 3986 allows unencoded in a path (plus "%" of existing escapes).
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


class UnsafeUrl(ValueError):
    """The text is not an acceptable http(s) URL; the message says why."""


def normalize_url(raw: str, *, max_length: int = MAX_LENGTH) -> str:
    """The canonical form of the http(s) URL ``raw``; UnsafeUrl if it is not one."""
    text = raw.strip(" \t\r\n\f\v")
    if not text:
        raise UnsafeUrl("The URL is empty.")
    if len(text) > max_length:
        raise UnsafeUrl(f"The URL is longer than {max_length} characters.")
    _refuse_invisible(text)
    try:
        parts = urlsplit(_with_scheme(text))
    except ValueError:  # unbalanced brackets around an IPv6 address
        raise UnsafeUrl("The URL's host is not valid.") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeUrl("Only http and https URLs are accepted.")
    host, port = _split_netloc(parts.netloc)
    authority = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    url = f"{scheme}://{authority}{_encode(parts.path or '/', _PATH_SAFE)}"
    if parts.query:
        url += "?" + _encode(parts.query, _QUERY_SAFE)
    if parts.fragment:
        url += "#" + _encode(parts.fragment, _QUERY_SAFE)
    if len(url) > max_length:
        raise UnsafeUrl(f"The URL is longer than {max_length} characters once encoded.")
    return url


def host_of(url: str) -> str:
    """The canonical host of an http(s) URL, without a trailing dot (for comparing)."""
    host, _ = _split_netloc(urlsplit(normalize_url(url)).netloc)
    return host.rstrip(".")


def same_host(url: str, hosts: Iterable[str]) -> bool:
    """Whether the (normalised) ``url`` points at one of the canonical ``hosts``."""
    return host_of(url) in set(hosts)


def referrer_of(referer: str) -> Optional[str]:
    """What a visit keeps of a ``Referer``: scheme, host (and port) and path.

    The query and fragment go (they carry tokens, session ids, search
    terms), and so does a ``user:password@``. Text that does not parse as a
    URL (an unbalanced ``[``) is dropped whole: None.
    """
    try:
        parts = urlsplit(referer)
    except ValueError:
        return None
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", "")) or None


def _refuse_invisible(text: str) -> None:
    for char in text:
        category = unicodedata.category(char)
        # Cc: control, Cf: format (bidi overrides, zero-width), Z*: spaces and
        # line separators, Cs: lone surrogates.
        if category in ("Cc", "Cf", "Cs") or category.startswith("Z"):
            raise UnsafeUrl(
                "The URL contains whitespace or a control character "
                f"(U+{ord(char):04X})."
            )


def _with_scheme(text: str) -> str:
    if text.startswith("//"):
        return "https:" + text
    match = _SCHEME.match(text)
    if match and not _PORT_AFTER_COLON.match(text, match.end()):
        return text
    return "https://" + text


def _split_netloc(netloc: str) -> tuple[str, Optional[int]]:
    if not netloc:
        raise UnsafeUrl("The URL has no host.")
    if "@" in netloc:
        raise UnsafeUrl("URLs with credentials (user:password@) are not accepted.")
    if netloc.startswith("["):
        inner, bracket, rest = netloc[1:].partition("]")
        if not bracket:
            raise UnsafeUrl("The URL's IPv6 address is not closed by ']'.")
        host = "[" + _ipv6(inner) + "]"
    else:
        name, colon, port = netloc.partition(":")
        host, rest = _hostname(name), colon + port
    return host, _port(rest)


def _port(rest: str) -> Optional[int]:
    if rest in ("", ":"):
        return None
    digits = rest[1:]
    if not rest.startswith(":") or not digits.isdigit() or not digits.isascii():
        raise UnsafeUrl("The URL's port is not a number.")
    port = int(digits)
    if not 1 <= port <= 65535:
        raise UnsafeUrl("The URL's port is outside 1..65535.")
    return port


def _ipv6(text: str) -> str:
    try:
        return ipaddress.IPv6Address(text).compressed
    except ValueError:
        raise UnsafeUrl("The URL's host is not a valid IPv6 address.") from None


def _hostname(host: str) -> str:
    if not host:
        raise UnsafeUrl("The URL has no host.")
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:
            raise UnsafeUrl("The URL's international host name is not valid.") from None
    host = host.lower()
    ipv4 = _ipv4(host)
    if ipv4 is not None:
        return ipv4
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(host) > 254 or not all(_LABEL.fullmatch(label) for label in labels):
        raise UnsafeUrl("The URL's host name is not valid.")
    for label in labels:
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except idna.IDNAError:
                raise UnsafeUrl("The URL's punycode host name is not valid.") from None
    return host


def _ipv4(host: str) -> Optional[str]:
    """Dotted quad of ``host`` if a browser reads it as IPv4 (WHATWG), else None."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    if not (last.isdigit() and last.isascii()) and not _ipv4_number(
        last, check_only=True
    ):
        return None  # the last label is not a number: a domain name
    numbers = [_ipv4_number(part) for part in parts]
    if len(numbers) > 4 or any(n > 255 for n in numbers[:-1]):
        raise UnsafeUrl("The URL's IPv4 address is not valid.")
    if numbers[-1] >= 256 ** (5 - len(numbers)):
        raise UnsafeUrl("The URL's IPv4 address is not valid.")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return str(ipaddress.IPv4Address(value))


def _ipv4_number(part: str, check_only: bool = False):
    base, digits = 10, part
    if part[:2] in ("0x", "0X"):
        base, digits = 16, part[2:]
    elif len(part) > 1 and part.startswith("0"):
        base, digits = 8, part[1:]
    try:
        value = int(digits, base) if digits else 0
        valid = part != "" and (digits == "" or digits.isalnum()) and value >= 0
    except ValueError:
        valid, value = False, None
    if check_only:
        return valid
    if not valid:
        raise UnsafeUrl("The URL's IPv4 address is not valid.")
    return value


def _encode(part: str, safe: str) -> str:
    return quote(_LONE_PERCENT.sub("%25", part), safe=safe)
