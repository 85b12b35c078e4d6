"""The client's address as every later reader sees it (web.middleware.ClientAddress)."""

import falcon
import falcon.testing

from core.proxies import TrustedProxies
from web.middleware import PEER_ENVIRON_KEY
from web.middleware import ClientAddress


class _Echo:
    def on_get(self, req, resp):
        resp.media = {"client": req.remote_addr, "peer": req.env[PEER_ENVIRON_KEY]}


def _client(setting: str) -> falcon.testing.TestClient:
    app = falcon.App(middleware=[ClientAddress(TrustedProxies(setting))])
    app.add_route("/", _Echo())
    return falcon.testing.TestClient(app)


def _seen(client, peer, forwarded_for=None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.simulate_get("/", remote_addr=peer, headers=headers).json


def test_behind_a_trusted_proxy_remote_addr_is_the_client():
    client = _client("10.0.0.0/24")
    assert _seen(client, "10.0.0.2", "203.0.113.6, 198.51.100.1") == {
        "client": "198.51.100.1",
        "peer": "10.0.0.2",
    }


def test_from_anyone_else_the_header_changes_nothing():
    client = _client("10.0.0.0/24")
    assert _seen(client, "192.0.2.7", "198.51.100.1") == {
        "client": "192.0.2.7",
        "peer": "192.0.2.7",
    }
    assert _seen(client, "10.0.0.2") == {"client": "10.0.0.2", "peer": "10.0.0.2"}
    assert _seen(client, "10.0.0.2", "bogus") == {
        "client": "10.0.0.2",
        "peer": "10.0.0.2",
    }
