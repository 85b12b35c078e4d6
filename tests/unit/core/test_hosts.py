"""Which Host and Origin headers are answered (core.hosts), on the API's port
(web.middleware.AllowedHosts), and the headers of /docs."""

import falcon.testing
import pytest

from core.hosts import AllowedHosts
from core.hosts import AllowedOrigins
from core.hosts import split_host
from tests.support.problems import assert_problem


@pytest.mark.parametrize(
    "header, parts",
    [
        ("localhost", ("localhost", None)),
        ("LocalHost:8000", ("localhost", 8000)),
        ("example.com.", ("example.com", None)),
        ("[::1]:8001", ("::1", 8001)),
        ("[::1]", ("::1", None)),
        ("127.0.0.1:80", ("127.0.0.1", 80)),
    ],
)
def test_split_host(header, parts):
    assert split_host(header) == parts


@pytest.mark.parametrize(
    "header",
    [
        "",
        ":80",
        "a b",
        "host:port",
        "host:0",
        "host:70000",
        "[::1",
        "[zz]:1",
        "évil.example",
        "host:８０",
        "user@host",
        "a/b",
    ],
)
def test_split_host_refuses_what_is_no_host(header):
    assert split_host(header) is None


def test_by_default_the_loopback_names_and_the_public_host_on_any_port():
    hosts = AllowedHosts("", ["https://sho.rt/s/"])
    for header in (
        "localhost",
        "localhost:8000",
        "127.0.0.1:8001",
        "[::1]:8000",
        "127.0.0.2",
        "sho.rt",
        "SHO.RT:443",
        None,  # no Host at all (HTTP/1.0): no browser, no rebinding
    ):
        assert hosts.allows(header), header
    for header in (
        "evil.example",
        "sho.rt.evil.example",
        "localhost.evil.example",
        "10.0.0.5:8000",
        "",
        "localhost:http",
    ):
        assert not hosts.allows(header), header


def test_the_setting_adds_names_domains_or_everything():
    hosts = AllowedHosts("api.example.com, .example.org,[2001:db8::1]:8000", [])
    assert hosts.allows("api.example.com:8443")
    assert hosts.allows("example.org") and hosts.allows("push.example.org")
    assert hosts.allows("[2001:db8::1]")
    assert hosts.allows("localhost:1")  # loopback names stay allowed
    assert not hosts.allows("www.example.com")
    assert not hosts.allows("badexample.org")
    assert AllowedHosts("*").allows("anything.example")


@pytest.mark.parametrize("setting", ["a b", "host:port", "http://x/"])
def test_a_bad_entry_is_an_error(setting):
    with pytest.raises(ValueError, match="ALLOWED_HOSTS"):
        AllowedHosts(setting)


def test_origins_the_servers_own_pages_and_the_listed_ones():
    origins = AllowedOrigins("https://app.example.com, http://localhost:3000")
    assert origins.allows(None, "whatever")  # a program, not a page
    assert origins.allows("http://127.0.0.1:8001", "127.0.0.1:8001")
    assert origins.allows("https://push.example.com", "push.example.com")
    assert origins.allows("http://push.example.com:80", "push.example.com")
    assert origins.allows("https://app.example.com", "push.example.com")
    assert origins.allows("http://localhost:3000", "127.0.0.1:8001")
    assert not origins.allows("http://evil.example", "127.0.0.1:8001")
    assert not origins.allows("http://127.0.0.1:8000", "127.0.0.1:8001")
    assert not origins.allows("http://localhost:8001", "127.0.0.1:8001")
    assert not origins.allows("http://app.example.com", "push.example.com")
    assert not origins.allows("null", "127.0.0.1:8001")
    assert not origins.allows("http://127.0.0.1:8001", None)


@pytest.mark.parametrize("setting", ["app.example.com", "ftp://x", "https://x/path"])
def test_a_bad_origin_is_an_error(setting):
    with pytest.raises(ValueError, match="PUSH_ALLOWED_ORIGINS"):
        AllowedOrigins(setting)


# On the API's port -----------------------------------------------------------


def test_the_api_refuses_a_host_it_is_not_known_by(make_client):
    client = make_client(scope="read", public_base_url="https://sho.rt")
    for host in ("localhost:8000", "127.0.0.1", "sho.rt"):
        assert client.simulate_get("/notes", host=host).status_code == 200
    for host in ("evil.example", "sho.rt.evil.example"):
        problem = assert_problem(client.simulate_get("/notes", host=host), 400)
        assert "ALLOWED_HOSTS" in problem["detail"]
    # Before anything else: a request to a foreign name learns nothing.
    plain = falcon.testing.TestClient(client.app)
    assert_problem(plain.simulate_get("/notes", host="evil.example"), 400)


def test_probes_answer_any_host(make_client):
    client = falcon.testing.TestClient(make_client().app)
    assert client.simulate_get("/health", host="10.1.2.3").status_code == 200
    assert client.simulate_get("/ready", host="10.1.2.3").status_code in (200, 503)


def test_allowed_hosts_adds_names_to_the_api(make_client):
    client = make_client(scope="read", allowed_hosts=".example.net")
    assert client.simulate_get("/notes", host="api.example.net").status_code == 200
    assert client.simulate_get("/notes", host="example.com").status_code == 400
    with pytest.raises(ValueError, match="ALLOWED_HOSTS"):
        make_client(allowed_hosts="http://api.example.net/")


# /docs -----------------------------------------------------------------------


def test_docs_has_a_policy_and_no_inline_script(make_client):
    client = make_client(public_base_url="https://api.example.net/v1/")
    for path in ("/docs", "/docs/swagger-init.js"):
        answer = client.simulate_get(path)
        assert answer.status_code == 200
        assert answer.headers["x-content-type-options"] == "nosniff"
        policy = dict(
            (part.split(" ", 1) + [""])[:2]
            for part in answer.headers["content-security-policy"].split("; ")
        )
        assert policy["frame-ancestors"] == "'none'"
        assert policy["script-src"] == "'self'"
        assert policy["default-src"] == "'none'"
        # "Try it out" calls the servers of the document.
        assert policy["connect-src"] == "'self' https://api.example.net"
    page = client.simulate_get("/docs").text
    assert "<script>" not in page and "<style" not in page
