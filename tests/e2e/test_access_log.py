"""End to end: gunicorn's access log, text or JSON, never holds a secret."""

import pytest
import requests

SECRETS = ("hubsecret-1", "ticketsecret-2", "fpa_notakey")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_access_log_masks_secret_parameters(live_server, log_format):
    server = live_server(env={"LOG_FORMAT": log_format, "ACCESS_LOG": "-"})
    verify = requests.get(
        server.url + "/webhooks/github",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": SECRETS[0],
            "hub.challenge": "1",
        },
        timeout=5,
    )
    assert verify.status_code == 404  # no such source: logged all the same
    ticket = requests.get(
        server.url + f"/health?ticket={SECRETS[1]}",
        headers={"Authorization": f"Bearer {SECRETS[2]}", "X-Request-ID": "t-2"},
        timeout=5,
    )
    assert ticket.status_code == 200
    server.stop()
    log = server.log()
    assert "hub.verify_token=***&hub.challenge=1" in log
    assert "/health?ticket=***" in log
    assert [secret for secret in SECRETS if secret in log] == []
