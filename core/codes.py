"""Short codes: base62 over a reversible permutation of row ids; alias rules.

A code is the row id through a 40-bit Feistel permutation, in base62, padded to
:data:`CODE_LENGTH`; decoding reverses it, so there is no table of codes. It
is a name, not a secret. Aliases never have a generated code's shape, and
neither may be a reserved word. Usage: docs/user/links.md
"""

import re
from collections.abc import Sequence
from typing import Optional

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_INDEX = {char: value for value, char in enumerate(ALPHABET)}

#: Width of the permutation: ids 1 .. 2**40 - 1 get codes.
ID_BITS = 40
MAX_ID = (1 << ID_BITS) - 1
#: Every generated code has exactly this many characters (62**7 > 2**40).
CODE_LENGTH = 7

#: Round keys of the Feistel network. Changing them changes every code.
ROUND_KEYS = (0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C)

#: First path segments of the app's routes (and a few usual ones), and
#: ``bulk``, the literal segment of ``/links/bulk`` that would shadow an alias
#: at ``/links/{code}``. No alias or code may equal one of them, compared
#: case-insensitively.
RESERVED = frozenset(
    (
        "health",
        "ready",
        "metrics",
        "openapi.json",
        "docs",
        "notes",
        "departments",
        "dept",
        "employees",
        "links",
        "primes",
        "supply_primes",
        "collatz",
        "webhooks",
        "subscriptions",
        "stream-tickets",
        "events",
        "api",
        "admin",
        "static",
        "favicon.ico",
        "robots.txt",
        "bulk",
    )
)

ALIAS_PATTERN = re.compile(r"[A-Za-z0-9_-]{3,64}")
_CODE_PATTERN = re.compile(f"[0-9a-zA-Z]{{{CODE_LENGTH}}}")


def encode(number: int, length: int = 1) -> str:
    """``number`` (>= 0) in base62, left-padded with ``0`` to ``length`` characters."""
    if number < 0:
        raise ValueError("only non-negative numbers have a base62 form")
    digits = []
    while number:
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits)).rjust(length, "0")


def decode(text: str) -> int:
    """The number a base62 string stands for; ValueError for other characters."""
    if not text:
        raise ValueError("empty base62 string")
    number = 0
    for char in text:
        try:
            number = number * 62 + _INDEX[char]
        except KeyError:
            raise ValueError(f"{char!r} is not a base62 digit") from None
    return number


class Feistel:
    """A balanced Feistel network: a bijection on ``0 .. 2**bits - 1``.

    Each round maps the halves ``(L, R)`` to ``(R, L ^ F(R, key))``; whatever
    ``F`` is, the round undoes itself given ``F``, so the network is a
    permutation and :meth:`inverse` runs the rounds backwards.

    Args:
        bits: Width in bits, even, at most 64.
        keys: One key per round (four rounds mix well enough here).
    """

    def __init__(self, bits: int, keys: Sequence[int]):
        if bits % 2 or not 2 <= bits <= 64:
            raise ValueError("bits must be even, 2..64")
        self.bits = bits
        self._half = bits // 2
        self._mask = (1 << self._half) - 1
        self._keys = tuple(keys)

    def _mix(self, value: int, key: int) -> int:
        # A 32-bit multiply-xorshift hash (murmur3's finaliser constants);
        # it need not be invertible, only well mixed.
        x = (value * 0x9E3779B1 + key) & 0xFFFFFFFF
        x ^= x >> 15
        x = (x * 0x85EBCA6B) & 0xFFFFFFFF
        x ^= x >> 13
        return x & self._mask

    def forward(self, number: int) -> int:
        """The image of ``number``."""
        left, right = number >> self._half, number & self._mask
        for key in self._keys:
            left, right = right, left ^ self._mix(right, key)
        return (left << self._half) | right

    def inverse(self, number: int) -> int:
        """The ``n`` with ``forward(n) == number``."""
        left, right = number >> self._half, number & self._mask
        for key in reversed(self._keys):
            left, right = right ^ self._mix(left, key), left
        return (left << self._half) | right


PERMUTATION = Feistel(ID_BITS, ROUND_KEYS)


def code_for_id(row_id: int) -> str:
    """The generated code of row ``row_id`` (1 .. MAX_ID)."""
    if not 1 <= row_id <= MAX_ID:
        raise ValueError(f"row id {row_id} is outside 1..{MAX_ID}")
    return encode(PERMUTATION.forward(row_id), CODE_LENGTH)


def looks_like_code(text: str) -> bool:
    """Whether ``text`` has the shape of a generated code (7 letters and digits)."""
    return _CODE_PATTERN.fullmatch(text) is not None


def id_for_code(code: str) -> Optional[int]:
    """The row id a generated code stands for, or None if ``code`` is not one."""
    if not looks_like_code(code):
        return None
    number = decode(code)
    if number > MAX_ID:
        return None
    return PERMUTATION.inverse(number)


def is_reserved(word: str) -> bool:
    """Whether ``word`` would shadow (or be confused with) a top-level route."""
    return word.lower() in RESERVED


def alias_error(alias: str) -> Optional[str]:
    """Why ``alias`` cannot be used, or None if it can."""
    if not ALIAS_PATTERN.fullmatch(alias):
        return "An alias is 3 to 64 characters of A-Z, a-z, 0-9, '_' and '-'."
    if looks_like_code(alias):
        return (
            "Exactly 7 letters and digits is the shape of generated codes; "
            "use another length or add '-' or '_'."
        )
    if is_reserved(alias):
        return f"'{alias}' is reserved: it names a route of this API."
    return None
