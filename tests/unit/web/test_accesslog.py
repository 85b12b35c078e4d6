"""Access log lines, text and JSON, with secrets masked."""

import datetime
import json

from gunicorn.config import Config

from web.accesslog import JsonLogger
from web.accesslog import Logger


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
