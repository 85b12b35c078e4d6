"""Rate limits: the setting's syntax and the headers' draft syntax."""

import pytest

from core.ratelimit import Decision
from core.ratelimit import Rate
from core.ratelimit import limit_header
from core.ratelimit import parse_rate
from core.ratelimit import policy_header


@pytest.mark.parametrize(
    "text, quota, window",
    [
        ("100/minute", 100, 60),
        ("5/second", 5, 1),
        ("5/seconds", 5, 1),
        (" 1000 / Hour ", 1000, 3600),
        ("10000/day", 10000, 86400),
    ],
)
def test_rates_are_parsed(text, quota, window):
    assert parse_rate(text) == Rate(quota, window)


@pytest.mark.parametrize("text", ["", "  ", "off", "OFF"])
def test_an_empty_or_off_rate_is_no_limit(text):
    assert parse_rate(text) is None


@pytest.mark.parametrize(
    "text", ["100", "0/minute", "-1/minute", "5/fortnight", "1.5/second", "x/minute"]
)
def test_a_bad_rate_names_the_setting(text):
    with pytest.raises(ValueError, match="RATE_LIMIT"):
        parse_rate(text)


def test_headers_follow_the_draft_syntax():
    rate = Rate(100, 60)
    assert policy_header("links", rate) == '"links";q=100;w=60'
    # 41.5 tokens left: 41 remain; full again in (100 - 41.5) / (100/60) = 35.1 s.
    assert limit_header("links", Decision.of(rate, 41.5, True)) == ('"links";r=41;t=36')
    # Nothing left: t is when the next request is allowed.
    assert limit_header("links", Decision.of(rate, 0.25, False)) == '"links";r=0;t=1'
