"""Secrets masked where the project prints: ``python -m api settings``, access logs."""

import datetime
import json

import pytest
from gunicorn.config import Config

from api import cli
from core.redact import SECRET_QUERY_PARAMS
from core.redact import mask_target
from core.redact import mask_url
from core.redact import mask_webhook_sources
from web.accesslog import JsonLogger
from web.accesslog import Logger


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


class _Response:
    status = "200 OK"
    headers = [("X-Request-ID", "rid-1")]
    sent = 2


def _log_request(logger_class, tmp_path, target):
    log_file = tmp_path / "access.log"
    config = Config()
    config.set("accesslog", str(log_file))
    config.set(
        "access_log_format",
        '"%(r)s" %(q)s %({raw_uri}e)s %({authorization}i)s %({http_cookie}e)s',
    )
    path, _, query = target.partition("?")
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": target,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_AUTHORIZATION": "Bearer fpa_secretkey",
        "HTTP_COOKIE": "session=secretcookie",
    }
    headers = [("AUTHORIZATION", "Bearer fpa_secretkey")]
    logger = logger_class(config)
    try:
        logger.access(_Response(), headers, environ, datetime.timedelta(milliseconds=3))
    finally:
        for handler in logger.access_log.handlers:
            handler.close()
    return log_file.read_text()


TARGET = "/webhooks/github?hub.mode=subscribe&hub.verify_token=hubsecret&ticket=t1"


def test_text_access_lines_mask_secret_parameters_and_credentials(tmp_path):
    line = _log_request(Logger, tmp_path, TARGET)
    masked = "/webhooks/github?hub.mode=subscribe&hub.verify_token=***&ticket=***"
    assert line.startswith(f'"GET {masked} HTTP/1.1" ')
    assert "hub.mode=subscribe&hub.verify_token=***&ticket=***" in line
    assert [
        s for s in ("hubsecret", "t1", "secretkey", "secretcookie") if s in line
    ] == []


def test_json_access_lines_mask_secret_parameters(tmp_path):
    record = json.loads(_log_request(JsonLogger, tmp_path, TARGET))
    assert record["path"] == (
        "/webhooks/github?hub.mode=subscribe&hub.verify_token=***&ticket=***"
    )
    assert "hubsecret" not in json.dumps(record)
