"""The rules of link statistics (core/linkstats.py): families, hosts, buckets."""

import datetime

import pytest

from core import linkstats

UTC = datetime.timezone.utc


@pytest.mark.parametrize(
    "agent, family",
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) "
            "AppleWebKit/605.1.15"
            " (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15",
            "Firefox",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like"
            " Gecko) Chrome/126.0.0.0 Safari/537.36",
            "Chrome",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) "
            "AppleWebKit/605.1.15"
            " (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
            "Chrome",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like"
            " Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
            "Chrome",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like"
            " Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87",
            "Edge",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like"
            " Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0",
            "Opera",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML,"
            " like Gecko) Version/17.5 Safari/605.1.15",
            "Safari",
        ),
        ("curl/8.5.0", "curl"),
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "bot",
        ),
        (
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "bot",
        ),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "bot"),
        ("facebookexternalhit/1.1", "bot"),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " HeadlessChrome/126.0.0.0 Safari/537.36",
            "bot",
        ),
        # A phone named CUBOT is no bot.
        (
            "Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 (KHTML, like"
            " Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
            "Chrome",
        ),
        ("python-requests/2.32.3", "other"),
        ("Wget/1.21.4", "other"),
        ("", None),
        (None, None),
    ],
)
def test_agent_families(agent, family):
    assert linkstats.agent_family(agent) == family
    assert family is None or family in linkstats.FAMILIES


@pytest.mark.parametrize(
    "referrer, host",
    [
        ("https://News.Example.org/story", "news.example.org"),
        ("https://intranet.example:8443/wiki/page", "intranet.example"),
        ("http://[2001:db8::1]/x", "2001:db8::1"),
        ("android-app://com.google.android.gm/", "com.google.android.gm"),
        ("not a url", None),
        ("", None),
        (None, None),
        ("https://" + "a" * 300 + ".example/", "a" * 255),
    ],
)
def test_referrer_hosts(referrer, host):
    assert linkstats.referrer_host(referrer) == host


MOMENT = datetime.datetime(2025, 1, 29, 13, 45, 12, 345000, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    "interval, start, following",
    [
        ("hour", (2025, 1, 29, 13), (2025, 1, 29, 14)),
        ("day", (2025, 1, 29), (2025, 1, 30)),
        ("week", (2025, 1, 27), (2025, 2, 3)),
        ("month", (2025, 1, 1), (2025, 2, 1)),
    ],
)
def test_floor_and_step(interval, start, following):
    floor = linkstats.floor(MOMENT, interval)
    assert floor == datetime.datetime(*start, tzinfo=UTC)
    assert linkstats.step(floor, interval) == datetime.datetime(*following, tzinfo=UTC)
    assert linkstats.back(linkstats.step(floor, interval), interval, 1) == floor


def test_months_cross_years_both_ways():
    december = datetime.datetime(2024, 12, 1)
    assert linkstats.step(december, "month") == datetime.datetime(2025, 1, 1)
    assert linkstats.back(datetime.datetime(2025, 2, 1), "month", 2) == december
    assert linkstats.back(december, "month", 12) == datetime.datetime(2023, 12, 1)
    assert linkstats.back(december, "month", 0) == december


def test_buckets_cover_the_range_from_the_bucket_of_since():
    since = datetime.datetime(2025, 1, 30, 22, 30)
    until = datetime.datetime(2025, 2, 2, 0, 0)
    assert linkstats.buckets(since, until, "day", 10) == [
        datetime.datetime(2025, 1, 30),
        datetime.datetime(2025, 1, 31),
        datetime.datetime(2025, 2, 1),
    ]
    assert linkstats.buckets(since, until, "day", 2) is None  # past the most
    assert len(linkstats.buckets(since, until, "hour", 100)) == 2 + 48


def test_an_unknown_interval_is_an_error():
    with pytest.raises(ValueError, match="interval"):
        linkstats.floor(MOMENT, "fortnight")
