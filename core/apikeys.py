"""API keys: their shape, their digest and their scopes (no I/O).

A key is ``fpa_``, 32 random base62 characters and a 6-character base62
CRC-32 of those 32. The prefix lets secret scanners find a leaked key; the
checksum lets them (and the server, before any lookup) tell a key from a
string that only looks like one. Keys are stored as their SHA-256 digest:
a key has about 190 random bits, so a fast hash is enough to keep a leaked
table from giving keys back.
"""

import hashlib
import re
import secrets
import zlib
from collections.abc import Iterable
from typing import FrozenSet
from typing import Optional
from typing import Tuple

from core.codes import ALPHABET
from core.codes import encode

PREFIX = "fpa_"
_RANDOM_LENGTH = 32
_CHECK_LENGTH = 6
_SHAPE = re.compile(
    f"{PREFIX}([0-9a-zA-Z]{{{_RANDOM_LENGTH}}})([0-9a-zA-Z]{{{_CHECK_LENGTH}}})"
)

READ = "read"
WRITE = "write"
ADMIN = "admin"
#: Every scope, each including those before it.
SCOPES: Tuple[str, ...] = (READ, WRITE, ADMIN)


def _checksum(body: str) -> str:
    return encode(zlib.crc32(body.encode("ascii")), _CHECK_LENGTH)


def new_key() -> str:
    """A fresh key, to be shown once."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(_RANDOM_LENGTH))
    return PREFIX + body + _checksum(body)


def well_formed(key: str) -> bool:
    """Whether ``key`` has a key's shape and a checksum that matches."""
    match = _SHAPE.fullmatch(key)
    return match is not None and _checksum(match.group(1)) == match.group(2)


def digest(key: str) -> str:
    """What is stored of ``key``: its SHA-256, in hex."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def parse_scopes(text: str) -> Tuple[str, ...]:
    """``"read,write"`` -> ``("read", "write")``; ValueError for an unknown one."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",")))
    unknown = [name for name in names if name not in SCOPES]
    if unknown or not names:
        raise ValueError(
            f"scopes are a comma-separated list of {', '.join(SCOPES)}; got {text!r}"
        )
    return names


def granted(scopes: Iterable[str]) -> FrozenSet[str]:
    """Every scope a key with ``scopes`` may use: each includes the lower ones."""
    top = max((SCOPES.index(scope) for scope in scopes), default=-1)
    return frozenset(SCOPES[: top + 1])


def bearer_token(header: Optional[str]) -> Optional[str]:
    """The key of an ``Authorization: Bearer KEY`` header; None for anything else."""
    scheme, _, key = (header or "").strip().partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None
