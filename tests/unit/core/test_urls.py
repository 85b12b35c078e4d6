"""Safe http(s) URLs: what is refused, and the canonical form of what is not."""

import pytest

from core.urls import MAX_LENGTH
from core.urls import UnsafeUrl
from core.urls import host_of
from core.urls import normalize_url
from core.urls import referrer_of
from core.urls import same_host
from tests.support.unsafe_urls import UNSAFE


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("https://example.com/a?b=c#d", "https://example.com/a?b=c#d"),
        ("example.com", "https://example.com/"),
        ("example.com/path?q=1", "https://example.com/path?q=1"),
        ("example.com:8080/x", "https://example.com:8080/x"),
        ("localhost:3000", "https://localhost:3000/"),
        ("//example.com/x", "https://example.com/x"),
        ("  https://example.com/x  ", "https://example.com/x"),
        ("HTTP://Example.COM/Path", "http://example.com/Path"),
        ("https://example.com:443/", "https://example.com/"),
        ("http://example.com:80/", "http://example.com/"),
        ("http://example.com:443/", "http://example.com:443/"),
        ("https://example.com:/", "https://example.com/"),
        ("https://example.com/a%20b", "https://example.com/a%20b"),
        ("https://example.com/100%", "https://example.com/100%25"),
        ('https://example.com/"<x>"', "https://example.com/%22%3Cx%3E%22"),
        ("https://example.com/a\\b", "https://example.com/a%5Cb"),
        ("https://example.com/?q=a&r=b/c?d", "https://example.com/?q=a&r=b/c?d"),
        ("http://a_b.example.com/", "http://a_b.example.com/"),
        ("http://example.com./", "http://example.com./"),
        # IDN hosts become IDNA 2008 punycode; paths are UTF-8 percent-encoded.
        ("https://bücher.example/straße", "https://xn--bcher-kva.example/stra%C3%9Fe"),
        ("https://BÜCHER.example/", "https://xn--bcher-kva.example/"),
        ("https://xn--bcher-kva.example/", "https://xn--bcher-kva.example/"),
        ("https://faß.de/", "https://xn--fa-hia.de/"),
        (
            "https://例え.テスト/?q=ü#ö",
            "https://xn--r8jz45g.xn--zckzah/?q=%C3%BC#%C3%B6",
        ),
        ("https://еxample.com/", "https://xn--xample-2of.com/"),  # Cyrillic е shows
        ("https://ｅｘａｍｐｌｅ.com/", "https://example.com/"),  # full-width letters
        # IP addresses in the forms a browser accepts, canonical.
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
        ("http://2130706433/", "http://127.0.0.1/"),
        ("http://0x7f.1/", "http://127.0.0.1/"),
        ("http://0177.0.0.1/", "http://127.0.0.1/"),
        ("http://[::1]/", "http://[::1]/"),
        ("http://[0:0:0:0:0:0:0:1]:8080/x", "http://[::1]:8080/x"),
    ],
)
def test_accepted_urls_are_normalised(raw, expected):
    assert normalize_url(raw) == expected
    assert normalize_url(expected) == expected  # idempotent


@pytest.mark.parametrize("raw, reason", UNSAFE)
def test_unsafe_urls_are_refused_with_a_reason(raw, reason):
    with pytest.raises(UnsafeUrl, match=reason):
        normalize_url(raw)


def test_the_length_limit_counts_characters():
    base = "https://example.com/"
    assert normalize_url(base + "a" * (MAX_LENGTH - len(base))).endswith("a")
    with pytest.raises(UnsafeUrl):
        normalize_url(base + "a" * (MAX_LENGTH - len(base) + 1))


def test_host_of_is_canonical_for_comparison():
    assert host_of("http://127.0.0.1:8000") == "127.0.0.1"
    assert host_of("https://SHO.RT./x") == "sho.rt"
    assert host_of("2130706433") == "127.0.0.1"
    assert same_host("HTTPS://Bücher.example:8443/", {"xn--bcher-kva.example"})
    assert not same_host("https://example.com/", {"example.org"})


@pytest.mark.parametrize(
    "referer, kept",
    [
        (
            "https://news.example.org/a/b?token=x&s=1#top",
            "https://news.example.org/a/b",
        ),
        ("https://u:pw@h.example:8443/p?q", "https://h.example:8443/p"),
        ("https://h.example", "https://h.example"),
        ("https://h.example/?", "https://h.example/"),
        (
            "android-app://com.google.android.gm/",
            "android-app://com.google.android.gm/",
        ),
        ("not a url?token=x", "not a url"),
        ("?token=x", None),
        ("#token", None),
        ("http://[::1/x?token=y", None),
    ],
)
def test_a_referrer_keeps_scheme_host_and_path(referer, kept):
    assert referrer_of(referer) == kept
