"""JSON on the wire: the one encoder and decoder of every body the project sends.

:func:`dumps` (compact UTF-8) serves responses, push events and webhooks;
:func:`loads` reads every JSON body within limits (I-JSON: UTF-8, no lone
surrogate, finite numbers of at most :data:`MAX_INT_DIGITS` digits, nesting at
most :data:`MAX_DEPTH`, checked before parsing).

Design: docs/design/security.md#input-a-4xx-problem-never-a-500
"""

import json
import math
import re
import sys
from typing import Any

# One encoder for every call: json.dumps with options builds a new
# JSONEncoder each time (it only reuses its default one), which shows on
# hot paths. An encoder keeps no state between calls, so threads may share it.
# No check for circular references: every body is a tree built per response,
# and under PyPy the check (a dict entry per list and object) cost about 9% of
# a 100-row employees page; a cycle would still fail, as a RecursionError.
_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, check_circular=False
)

#: Deepest nesting of arrays and objects accepted (GitHub's payloads use < 10).
MAX_DEPTH = 64
#: Longest integer accepted, in digits: CPython's default limit, made explicit
#: so that every interpreter and setting agrees.
MAX_INT_DIGITS = 4300

# A JSON string token: quotes around anything but quotes and backslashes, or
# escapes (the "unrolled loop" form, linear on long strings).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_BRACKETS = re.compile(r"[\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Possibly an escaped surrogate; a hit (rare) makes loads() look at the strings.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonError(ValueError):
    """The text is not a JSON document this API accepts; the message says why."""


def dumps(value: Any) -> str:
    """``value`` as compact JSON text."""
    return _ENCODER.encode(value)


def encode(value: Any) -> bytes:
    """``value`` as compact JSON in UTF-8 bytes."""
    return dumps(value).encode("utf-8")


def dumps_pretty(value: Any) -> str:
    """``value`` as indented JSON text, for documents people read (OpenAPI)."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def loads(text: Any) -> Any:
    """The JSON document in ``text`` (str, or UTF-8 bytes).

    Raises:
        ValueError: it is not JSON, or breaks a rule of the module docstring
            (:class:`JsonError`, whose message says which).
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")  # UnicodeDecodeError is a ValueError
    else:
        try:  # strict UTF-8 encodes no surrogate; faster than a regex
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise JsonError("The text contains a lone surrogate.") from None
    _check_depth(text)
    if len(text) > MAX_INT_DIGITS and not _INT_LIMIT_BUILT_IN:
        _check_int_digits(text)
    value = json.loads(text)
    # One walk over the values, in Python: a hook (parse_float=...) would
    # make PyPy parse the whole text in pure Python, five times slower.
    _check_values(value, strings=bool(_SURROGATE_ESCAPE.search(text)))
    return value


def _check_depth(text: str) -> None:
    # Cheap first: a document with few brackets cannot be deep.
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    for match in _BRACKETS.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise JsonError(f"The document is nested deeper than {MAX_DEPTH}.")
        else:
            depth -= 1


_LONG_NUMBER = re.compile(r"\d{" + str(MAX_INT_DIGITS + 1) + ",}")
# CPython 3.11 (and PyPy 7.3.11) refuse int(str) of more digits by themselves.
_INT_LIMIT_BUILT_IN = (
    0 < getattr(sys, "get_int_max_str_digits", lambda: 0)() <= MAX_INT_DIGITS
)


def _check_int_digits(text: str) -> None:
    # For interpreters without a limit on int(str) digits (a long number
    # costs quadratic time). Digits inside strings are text: strip those.
    if _LONG_NUMBER.search(_STRING.sub('""', text)):
        raise JsonError(f"A number is longer than {MAX_INT_DIGITS} digits.")


def _check_values(value: Any, strings: bool) -> None:
    """Refuse NaN and infinities (``NaN``, ``1e999``) and, when ``strings``,
    lone surrogates (from a ``\\ud800`` escape) in strings and keys."""
    skip = _LEAVES if strings else _LEAVES_AND_STR
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise JsonError("A number is not finite (NaN, Infinity or out of range).")
    elif kind is str:
        if strings and _SURROGATE.search(value):
            raise JsonError("A string contains a lone surrogate (\\ud800-\\udfff).")
    elif kind is list:
        for item in value:
            if type(item) not in skip:
                _check_values(item, strings)
    elif kind is dict:
        for key, item in value.items():
            if strings:
                _check_values(key, strings)
            if type(item) not in skip:
                _check_values(item, strings)


# Values that pass whatever they hold: skipped without a call.
_LEAVES = frozenset((int, bool, type(None)))
_LEAVES_AND_STR = _LEAVES | {str}
