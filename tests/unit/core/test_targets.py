"""SSRF: links and subscriptions may not target the machine or its private network.

The rule (core/targets.py) on URLs in every spelling, through both
resources. The check at delivery, on the address the sender connects to, is
tested in tests/unit/workers/webhooks/test_transport.py.
"""

import pytest

from core.targets import RefusedTarget
from core.targets import Targets
from core.targets import same_machine
from core.urls import normalize_url
from tests.support.problems import assert_problem

#: Private, loopback, link-local... targets, each in several spellings.
REFUSED = [
    "http://127.0.0.1/",
    "http://127.1/",
    "http://2130706433/",  # integer
    "http://0x7f000001/",  # hexadecimal
    "http://0177.0.0.1/",  # octal
    "http://017700000001/",  # octal, one number
    "http://127.0.0.1.:8080/",  # trailing dot
    "http://１２７.０.０.１/",  # full-width digits (IDNA maps them)
    "http://localhost/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://printer.local/",
    "http://db.internal/",
    "http://0.0.0.0/",
    "http://0/",
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # CGNAT
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://224.0.0.1/",  # multicast
    "http://255.255.255.255/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:a00:1]/",  # 10.0.0.1, mapped
    "http://[::ffff:8.8.8.8]/",  # mapped, even when public
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
    "http://[fc00::1]/",  # unique-local
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",  # link-local
    "http://[ff02::1]/",  # multicast
    "http://[2001:db8::1]/",  # documentation
]

ALLOWED = [
    "https://example.com/",
    "http://93.184.215.14/",
    "http://8.8.8.8:8080/x",
    "http://172.32.0.1/",  # just past 172.16.0.0/12
    "http://100.128.0.1/",  # just past CGNAT
    "http://[2606:4700:4700::1111]/",
    "https://localhost.example.com/",  # a public name that merely contains it
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_targets_are_refused_in_every_spelling(url):
    with pytest.raises(RefusedTarget):
        Targets().check_url(normalize_url(url))


@pytest.mark.parametrize("url", ALLOWED)
def test_public_targets_pass(url):
    Targets().check_url(normalize_url(url))


@pytest.mark.parametrize(
    "allowed, url",
    [
        ("127.0.0.0/8", "http://127.0.0.1:9000/"),
        ("127.0.0.1", "http://2130706433/"),
        ("::1", "http://[::1]/"),
        ("10.0.0.0/8, 192.168.0.0/16", "http://192.168.1.1/"),
        ("localhost", "http://localhost:8080/"),
        ("hooks.internal", "http://HOOKS.internal./x"),
        ("*", "http://169.254.169.254/"),
    ],
)
def test_the_setting_allows_named_hosts_and_networks(allowed, url):
    Targets(allowed).check_url(normalize_url(url))


def test_an_allowed_network_allows_only_itself():
    targets = Targets("127.0.0.1")
    with pytest.raises(RefusedTarget):
        targets.check_url(normalize_url("http://127.0.0.2/"))
    with pytest.raises(RefusedTarget):
        targets.check_url(normalize_url("http://localhost/"))  # a name, not listed


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "exa_mple!", "a..b", "http://x/"])
def test_a_bad_setting_entry_is_refused_at_start(bad):
    with pytest.raises(ValueError, match="ALLOWED_PRIVATE_TARGETS"):
        Targets(bad)


@pytest.mark.parametrize(
    "host, other, same",
    [
        ("127.0.0.1", "localhost", True),
        ("[::1]", "0.0.0.0", True),
        ("[::ffff:127.0.0.1]", "127.0.0.2", True),
        ("sho.rt", "sho.rt.", True),
        ("sho.rt", "example.com", False),
        ("127.0.0.1", "example.com", False),
    ],
)
def test_same_machine(host, other, same):
    assert same_machine(host, other) is same


# Through the resources ------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/", "http://[::ffff:127.0.0.1]/", "http://0177.1/"],
)
def test_links_and_subscriptions_refuse_private_targets(client, url):
    for path, body in (
        ("/links", {"url": url}),
        ("/subscriptions", {"url": url, "events": ["*"]}),
    ):
        problem = assert_problem(client.simulate_post(path, json=body), 422)
        assert "not accepted" in problem["errors"]["url"][0]


def test_a_subscription_cannot_be_patched_to_a_private_target(client):
    created = client.simulate_post(
        "/subscriptions", json={"url": "https://example.com/hook", "events": ["*"]}
    ).json
    result = client.simulate_patch(
        f"/subscriptions/{created['id']}", json={"url": "http://10.0.0.1/"}
    )
    assert "url" in assert_problem(result, 422)["errors"]


def test_the_setting_lets_local_receivers_in(make_client):
    client = make_client(allowed_private_targets="127.0.0.0/8,localhost")
    for url in ("http://127.0.0.1:9000/hook", "http://localhost:9000/hook"):
        result = client.simulate_post(
            "/subscriptions", json={"url": url, "events": ["*"]}
        )
        assert result.status_code == 201, result.text


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/abc",  # the shortener (127.0.0.1:8000) by another name
        "http://[::1]:8000/abc",
        "http://0.0.0.0:8000/abc",
        "http://127.0.0.1:8000/abc",
    ],
)
def test_links_to_the_shortener_stay_refused_even_when_loopback_is_allowed(
    make_client, url
):
    client = make_client(allowed_private_targets="*")
    problem = assert_problem(client.simulate_post("/links", json={"url": url}), 422)
    assert "this API itself" in problem["errors"]["url"][0]


def test_two_aliases_cannot_redirect_to_each_other(make_client):
    client = make_client(
        public_base_url="https://sho.rt",
        allowed_private_targets="127.0.0.0/8",
        allowed_hosts="api.example.net",
    )
    first = client.simulate_post(
        "/links", json={"url": "https://example.com/", "alias": "first"}
    )
    assert first.status_code == 201
    for target in ("https://sho.rt/first", "https://SHO.RT./first"):
        result = client.simulate_post("/links", json={"url": target, "alias": "loop"})
        assert "this API itself" in assert_problem(result, 422)["errors"]["url"][0]
    # The name the client reached the API by is the shortener too.
    result = client.simulate_post(
        "/links",
        json={"url": "http://api.example.net/first"},
        headers={"Host": "api.example.net:8080"},
    )
    assert_problem(result, 422)
