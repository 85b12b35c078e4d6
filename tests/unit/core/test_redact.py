"""Secrets masked where the project prints: ``python -m api settings``.

The access log lines are tested in tests/unit/web/test_accesslog.py.
"""

import json

import pytest

from api import cli
from core.redact import SECRET_QUERY_PARAMS
from core.redact import mask_target
from core.redact import mask_url
from core.redact import mask_webhook_sources


@pytest.mark.parametrize(
    "target, shown",
    [
        ("/notes", "/notes"),
        ("/notes?limit=5", "/notes?limit=5"),
        (
            "/webhooks/github?hub.mode=subscribe&hub.verify_token=tok&hub.challenge=9",
            "/webhooks/github?hub.mode=subscribe&hub.verify_token=***&hub.challenge=9",
        ),
        (
            "/events?ticket=abc.def&last_event_id=3",
            "/events?ticket=***&last_event_id=3",
        ),
        ("/ws?last_event_id=3&Ticket=abc", "/ws?last_event_id=3&Ticket=***"),
        ("/x?ticket=a&ticket=b", "/x?ticket=***&ticket=***"),
        ("/x?ticket=", "/x?ticket=***"),
        # Only whole names: these are other parameters.
        ("/x?myticket=a&ticket_id=b", "/x?myticket=a&ticket_id=b"),
        ("/x?a=1#token=2", "/x?a=1#token=2"),
    ],
)
def test_secret_query_parameters_are_masked(target, shown):
    assert mask_target(target) == shown


def test_every_secret_name_is_masked():
    for name in SECRET_QUERY_PARAMS:
        assert mask_target(f"/p?a=1&{name}=s3cret&b=2") == f"/p?a=1&{name}=***&b=2"


@pytest.mark.parametrize(
    "url, shown",
    [
        ("sqlite:///var/api.db", "sqlite:///var/api.db"),
        ("postgresql://api:hunter2@db:5432/api", "postgresql://api:***@db:5432/api"),
        ("postgresql://api@db/api", "postgresql://api@db/api"),
        ("postgresql://a:p@ss@db/api", "postgresql://a:***@db/api"),
        ("postgresql://a:p/s?s@db/api", "postgresql://a:***@db/api"),
        ("postgresql://db:5432/api", "postgresql://db:5432/api"),
        (
            "postgresql://db/api?user=api&password=hunter2",
            "postgresql://db/api?user=api&password=***",
        ),
        (
            "rethinkdb://admin:pw@h1:28015,h2/todo?ca=/etc/ca.pem",
            "rethinkdb://admin:***@h1:28015,h2/todo?ca=/etc/ca.pem",
        ),
    ],
)
def test_passwords_in_urls_are_masked(url, shown):
    assert mask_url(url) == shown


def test_webhook_secrets_and_verify_tokens_are_masked():
    text = json.dumps(
        {
            "github": {"scheme": "github", "secret": "s3cret", "verify_token": "tok"},
            "acme": {"scheme": "standard", "secret": "whsec_abc"},
        }
    )
    assert json.loads(mask_webhook_sources(text)) == {
        "github": {"scheme": "github", "secret": "***", "verify_token": "***"},
        "acme": {"scheme": "standard", "secret": "***"},
    }
    # Where the secrets are in text that is not sources cannot be told.
    assert mask_webhook_sources('{"github": "s3cret"') == "***"
    assert mask_webhook_sources('{"github": "s3cret"}') == "***"
    assert mask_webhook_sources("") == ""


def test_the_settings_command_masks_every_secret(monkeypatch, capsys):
    secrets = ["hunter2", "rdbpass", "salty-salt", "ghsecret", "hubtoken"]
    monkeypatch.setenv("DATABASE_URL", "postgresql://api:hunter2@db/api")
    monkeypatch.setenv("RETHINKDB_URL", "rethinkdb://admin:rdbpass@db/todo")
    monkeypatch.setenv("VISIT_SALT", "salty-salt")
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv(
        "WEBHOOK_SOURCES",
        json.dumps(
            {
                "github": {
                    "scheme": "github",
                    "secret": "ghsecret",
                    "verify_token": "hubtoken",
                }
            }
        ),
    )
    assert cli.main(["settings"]) == 0
    out = capsys.readouterr().out
    assert [secret for secret in secrets if secret in out] == []
    lines = {line.split("=", 1)[0]: line for line in out.splitlines()}
    assert lines["DATABASE_URL"].startswith(
        "DATABASE_URL='postgresql://api:***@db/api'"
    )
    assert lines["RETHINKDB_URL"].startswith(
        "RETHINKDB_URL='rethinkdb://admin:***@db/todo'"
    )
    assert lines["VISIT_SALT"].startswith("VISIT_SALT='***'")
    assert '"secret": "***", "verify_token": "***"' in lines["WEBHOOK_SOURCES"]
    assert lines["PORT"].startswith("PORT=8123")  # the rest as it is
