"""The one JSON decoder (core/wire.py): I-JSON within limits, never a crash."""

import pytest

from core import wire


@pytest.mark.parametrize(
    "text, value",
    [
        (
            '{"title": "x", "n": [1, 2.5, true, null]}',
            {"title": "x", "n": [1, 2.5, True, None]},
        ),
        ('"\\ud83d\\ude00"', "\U0001f600"),  # a surrogate pair is one character
        ('"\\\\ud800"', "\\ud800"),  # an escaped backslash, then text
        ('"' + "[" * 70 + '"', "[" * 70),  # brackets in a string do not nest
        ("[1.5e300, -1e-400]", [1.5e300, -0.0]),
        ('{"a": "Infinity", "b": "NaN"}', {"a": "Infinity", "b": "NaN"}),
        (
            "[" * wire.MAX_DEPTH + "]" * wire.MAX_DEPTH,
            eval("[" * wire.MAX_DEPTH + "]" * wire.MAX_DEPTH),
        ),
        ('"é"'.encode(), "é"),
    ],
)
def test_accepts_json(text, value):
    assert wire.loads(text) == value


@pytest.mark.parametrize(
    "text, reason",
    [
        ("[" * 10_000 + "]" * 10_000, "nested deeper than 64"),
        ('{"a":' * 65 + "1" + "}" * 65, "nested deeper than 64"),
        ("[" * (wire.MAX_DEPTH + 1) + "]" * (wire.MAX_DEPTH + 1), "nested deeper"),
        ("[" * 100_000, "nested deeper"),  # not even closed
        ('"\\ud800"', "lone surrogate"),
        ('{"\\udc00": 1}', "lone surrogate"),
        ('[{"a": ["x", "\\uDBFF"]}]', "lone surrogate"),
        ('"\\ud800\\u0041"', "lone surrogate"),  # a high half, then not a low one
        ('"\ud800"', "lone surrogate"),  # raw, in a str
        (b'"\xed\xa0\x80"', "decode"),  # raw, UTF-8 encoded: not UTF-8
        (b'"\xff"', "decode"),
        ("[NaN]", "not finite"),
        ('{"x": -Infinity}', "not finite"),
        ("[1e999]", "not finite"),
        ("[" + "9" * 400 + ".0]", "not finite"),
        ("[" + "1" * 5000 + "]", "digits"),
        ("", None),  # the parser's own message differs between interpreters
        ("{", None),
    ],
)
def test_refuses(text, reason):
    with pytest.raises(ValueError, match=reason):
        wire.loads(text)


def test_long_number_check_for_interpreters_without_a_limit():
    # The fallback used where int(str) has no digit limit: digits in strings
    # do not count.
    with pytest.raises(wire.JsonError, match="digits"):
        wire._check_int_digits("[" + "1" * (wire.MAX_INT_DIGITS + 1) + "]")
    wire._check_int_digits('["' + "1" * (wire.MAX_INT_DIGITS + 1) + '"]')


def test_round_trip_of_what_the_encoder_writes():
    value = {"note": {"title": "ünïcode ✓ \U0001f600", "tags": [1, 2.5, None]}}
    assert wire.loads(wire.encode(value)) == value
