"""core/logs.py: text by default, one JSON object per line with LOG_FORMAT=json."""

import io
import json
import logging

import pytest

from core.logs import JsonFormatter
from core.logs import RequestIdFilter
from core.logs import request_id_var
from core.logs import wants_json


def _record(message, *args, exc_info=None, **extra):
    record = logging.LogRecord(
        "api.test", logging.ERROR, __file__, 1, message, args, exc_info
    )
    record.__dict__.update(extra)
    RequestIdFilter().filter(record)
    return record


def test_a_json_line_has_the_fields_and_the_request_id():
    token = request_id_var.set("rid-1")
    try:
        line = JsonFormatter().format(_record("saved %d of %s", 3, "ünïcode"))
    finally:
        request_id_var.reset(token)
    assert "\n" not in line
    record = json.loads(line)
    assert record["message"] == "saved 3 of ünïcode"
    assert record["level"] == "error"
    assert record["logger"] == "api.test"
    assert record["request_id"] == "rid-1"
    assert record["time"].endswith("Z") and len(record["time"]) == 24


def test_a_traceback_stays_inside_the_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        line = JsonFormatter().format(_record("failed", exc_info=sys.exc_info()))
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_access_fields_are_kept():
    line = JsonFormatter().format(_record("GET / 200", route="/{code}", status=302))
    record = json.loads(line)
    assert record["route"] == "/{code}" and record["status"] == 302


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_formats():
    assert not wants_json("")
    assert not wants_json("text")
    assert wants_json("JSON")
    assert not wants_json("auto", _Terminal())
    assert wants_json("auto", io.StringIO())
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        wants_json("xml")
