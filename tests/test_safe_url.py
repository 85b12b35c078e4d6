"""Safe http(s) URLs: what is refused, and the canonical form of what is not."""

import marshmallow
import pytest

from api.safe_url import MAX_LENGTH
from api.safe_url import SafeUrl
from api.safe_url import UnsafeUrl
from api.safe_url import host_of
from api.safe_url import normalize_url
from api.safe_url import same_host


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


UNSAFE = [
    ("javascript:alert(1)", "Only http and https"),
    ("JavaScript:alert(document.cookie)", "Only http and https"),
    ("data:text/html,<script>alert(1)</script>", "Only http and https"),
    ("file:///etc/passwd", "Only http and https"),
    ("ftp://example.com/file", "Only http and https"),
    ("mailto:someone@example.com", "Only http and https"),
    ("ws://example.com/", "Only http and https"),
    ("https://user:pass@example.com/", "credentials"),
    ("https://user@example.com/", "credentials"),
    ("https://example.com@evil.com/", "credentials"),
    ("https://example.com/a b", "whitespace"),
    ("https://exa mple.com/", "whitespace"),
    ("https://example.com/\ta", "whitespace"),
    ("https://example.com/a\nb", "whitespace"),
    ("https://example.com/\r\nSet-Cookie:x", "whitespace"),
    ("https://example.com/\x00", "control"),
    ("https://example.com/\x7f", "control"),
    ("https://example.com/\x85", "control"),
    ("https://example.com/a\x85b", "control"),
    ("\x00https://example.com/", "control"),
    ("https://example.com/\u202egnp.exe", "control"),  # right-to-left override
    ("https://example.com/\u200b", "control"),  # zero-width space
    ("https://example.com/\u3000", "whitespace"),  # ideographic space
    ("https://example.com/a\u00a0b", "whitespace"),  # no-break space
    ("https://example.com/" + "a" * MAX_LENGTH, "longer than"),
    ("https://example.com/" + "é" * (MAX_LENGTH // 2), "once encoded"),
    ("", "empty"),
    ("   ", "empty"),
    ("https://", "no host"),
    ("https:///path", "no host"),
    ("http:/example.com", "no host"),
    ("https://:8080/", "no host"),
    ("https://example.com:99999/", "port"),
    ("https://example.com:0/", "port"),
    ("https://example.com:http/", "port"),
    ("https://exa<mple.com/", "host name"),
    ("https://example.com\\@evil.com/", "credentials"),
    ("https://example.com\\evil.com/", "host name"),
    ("https://-example.com/", "host name"),
    ("https://a..b/", "host name"),
    ("https://" + "a" * 64 + ".com/", "host name"),
    ("https://ex%61mple.com/", "host name"),
    ("https://xn--zz.com/", "punycode"),
    ("https://bü_cher.example/", "international host"),
    ("http://[::1/", "host"),
    ("http://[::g]/", "host"),
    ("http://[::1]x/", "port"),
    ("http://1.2.3.4.5/", "IPv4"),
    ("http://256.1.1.1/", "IPv4"),
    ("http://08/", "IPv4"),
    ("http://example.123/", "IPv4"),
]


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


class Target(marshmallow.Schema):
    url = SafeUrl(required=True)


def test_safe_url_field_loads_the_normalised_url():
    assert Target().load({"url": "Example.com"}) == {"url": "https://example.com/"}


def test_safe_url_field_refuses_with_a_field_error():
    with pytest.raises(marshmallow.ValidationError) as info:
        Target().load({"url": "javascript:alert(1)"})
    assert "Only http and https" in info.value.messages["url"][0]


def test_safe_url_field_refuses_non_strings():
    with pytest.raises(marshmallow.ValidationError):
        Target().load({"url": 42})
