"""``python -m api supervise``: supervisord with supervisord.conf (``make serve``).

``LOG_FORMAT`` is settled here, once, for every process: ``auto`` looks at
this process's standard output (the terminal), since the processes under
supervisord write to pipes and would all pick JSON. Under JSON, supervisord's
own lines (spawned, exited, gave up, ...) are JSON objects like the
processes' lines, with ``logger`` ``supervisord`` and, when the line is
about one process, its name in ``program``.
"""

import argparse
import datetime
import json
import os
import re
import sys
import time

from supervisor import loggers
from supervisor import supervisord

from core.clock import isoformat
from core.logs import wants_json
from core.settings import Settings

CONF = os.path.join(os.path.dirname(os.path.dirname(__file__)), "supervisord.conf")

#: The process a supervisord line is about: "exited: push (...)", "spawned: 'web'
#: with pid 12", "gave up: push entered FATAL state...", "stopped: web (...)".
_PROGRAM = re.compile(r"^(?:[a-z ]+): '?([\w.-]+)'?[ (]")


def json_line(level: str, message: str, created: float, pid: int) -> str:
    """One supervisord log line as a JSON object (the fields of core.logs)."""
    moment = datetime.datetime.fromtimestamp(created, datetime.timezone.utc)
    out = {
        "time": isoformat(moment),
        "level": {"warn": "warning", "crit": "critical"}.get(level, level),
        "logger": "supervisord",
        "message": message,
        "request_id": "-",
        "pid": pid,
    }
    program = _PROGRAM.match(message)
    if program:
        out["program"] = program.group(1)
    return json.dumps(out, ensure_ascii=False)


class JsonStreamHandler(loggers.StreamHandler):
    """supervisord's terminal handler, writing each line as JSON."""

    def emit(self, record) -> None:
        try:
            fields = record.asdict()
            line = json_line(
                fields["levelname"].lower(),
                fields["message"].rstrip("\n"),
                time.time(),
                os.getpid(),
            )
            self.stream.write(line + "\n")
            self.flush()
        except Exception:
            self.handleError()


def _json_stdout(logger, fmt) -> None:
    """In place of ``loggers.handle_stdout``, which make_logger calls."""
    handler = JsonStreamHandler(sys.stdout)
    handler.setLevel(logger.level)
    logger.addHandler(handler)


def supervise(settings: Settings, args: argparse.Namespace) -> int:
    """Run every process of supervisord.conf in the foreground (make serve)."""
    as_json = wants_json(settings.log_format, sys.stdout)
    os.environ["LOG_FORMAT"] = "json" if as_json else "text"
    if as_json:
        # The one place supervisord adds its terminal handler.
        loggers.handle_stdout = _json_stdout
    supervisord.main(["-c", args.conf])
    return 0


def add_command(commands) -> None:
    """Add ``supervise`` to the CLI's subparsers."""
    command = commands.add_parser("supervise", help=supervise.__doc__)
    command.add_argument("-c", "--conf", default=CONF, help="supervisord's config")
    command.set_defaults(run=supervise)
