"""``make serve``'s supervisor: a crashed process comes back, Ctrl-C stops all.

supervisord runs supervisord.conf as ``make serve`` does (the processes under
this interpreter, on free ports); the test kills the push worker and the
webhook runner with SIGKILL while the API keeps answering.
"""

import json
import os
import re
import signal
import sys
from pathlib import Path

import requests

from tests.support.live import child_env
from tests.support.processes import Process
from tests.support.processes import free_port
from tests.support.processes import wait_until


def _spawned(log: str, name: str) -> list:
    return [int(pid) for pid in re.findall(rf"spawned: '{name}' with pid (\d+)", log)]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_crashed_process_restarts_and_ctrl_c_stops_all(tmp_path, database_url):
    port = free_port()
    sse = f"127.0.0.1:{free_port()}"
    env = child_env(
        tmp_path,
        {
            "SERVE_PYTHON": sys.executable,
            "SERVE_DIR": str(tmp_path),
            "COLLATZ_WORKERS": "1",
            "PORT": str(port),
            "WORKERS": "2",
            "COLLATZ_FRONTEND": f"tcp://127.0.0.1:{free_port()}",
            "COLLATZ_BACKEND": f"tcp://127.0.0.1:{free_port()}",
            "PUSH_PUB_ENDPOINT": f"tcp://127.0.0.1:{free_port()}",
            "PUSH_SSE_BIND": sse,
        },
    )
    init = Process([sys.executable, "-m", "api", "init-db"], env, tmp_path / "init.log")
    init.start()
    assert init.proc.wait(60) == 0, init.log()
    init.stop()  # closes its log
    supervisor = Process(
        [str(Path(sys.executable).parent / "supervisord"), "-c", "supervisord.conf"],
        env,
        tmp_path / "serve.log",
    )
    supervisor.start()
    try:
        api = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(api + "/health"), 90, what="the API")
        wait_until(lambda: _answers(f"http://{sse}/health"), 90, what="push worker")
        wait_until(lambda: _spawned(supervisor.log(), "webhooks"), 30, what="runner")
        names = ("web", "collatz-broker", "collatz-worker-0", "webhooks", "push")
        first = {name: _spawned(supervisor.log(), name)[0] for name in names}

        for name in ("push", "webhooks"):
            os.kill(first[name], signal.SIGKILL)
        assert _answers(api + "/health")  # the API is not touched
        wait_until(
            lambda: (
                len(_spawned(supervisor.log(), "push")) == 2
                and len(_spawned(supervisor.log(), "webhooks")) == 2
            ),
            60,
            what="the killed processes started again",
        )
        wait_until(lambda: _answers(f"http://{sse}/health"), 60, what="push again")
        log = supervisor.log()
        assert "exited: push (terminated by SIGKILL; not expected)" in log
        assert "exited: webhooks (terminated by SIGKILL; not expected)" in log
        assert _spawned(log, "web") == [first["web"]]  # never restarted
        assert _answers(api + "/health")

        supervisor.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert supervisor.proc.wait(60) == 0
        everyone = [pid for name in names for pid in _spawned(supervisor.log(), name)]
        wait_until(lambda: not any(_alive(pid) for pid in everyone), 10, what="exit")
    finally:
        supervisor.stop(signal.SIGTERM)


def test_every_line_is_json_under_log_format_json(tmp_path, database_url):
    """``make serve``'s steps and ``python -m api supervise``, as the Makefile runs
    them: every line is a JSON object, supervisord's restarts included."""
    sse = f"127.0.0.1:{free_port()}"
    port = free_port()
    env = child_env(
        tmp_path,
        {
            "LOG_FORMAT": "json",
            "SERVE_PYTHON": sys.executable,
            "SERVE_DIR": str(tmp_path),
            "COLLATZ_WORKERS": "1",
            "PORT": str(port),
            "WORKERS": "1",
            "COLLATZ_FRONTEND": f"tcp://127.0.0.1:{free_port()}",
            "COLLATZ_BACKEND": f"tcp://127.0.0.1:{free_port()}",
            "PUSH_PUB_ENDPOINT": f"tcp://127.0.0.1:{free_port()}",
            "PUSH_SSE_BIND": sse,
        },
    )
    salaries = tmp_path / "salaries.csv"
    salaries.write_text(
        "Name,Position Title,Department,Employee Annual Salary\n"
        '"AARON,  ELVIA J",WATER RATE TAKER,WATER MGMNT,$88968.00\n'
    )
    log_path = tmp_path / "serve.log"
    for step in (
        ["init-db"],
        ["import-salaries", str(salaries), "--if-empty"],
        ["keys", "dev", "--file", str(tmp_path / "api-key")],
    ):
        done = Process([sys.executable, "-m", "api", *step], env, log_path)
        done.start()
        assert done.proc.wait(60) == 0, done.log()
        done.stop()
    supervisor = Process([sys.executable, "-m", "api", "supervise"], env, log_path)
    supervisor.start()
    try:

        def pushes():
            return _spawned(supervisor.log(), "push")

        wait_until(lambda: _answers(f"http://{sse}/health"), 90, what="push worker")
        os.kill(pushes()[0], signal.SIGKILL)
        wait_until(lambda: len(pushes()) == 2, 60, what="push started again")
        wait_until(lambda: _answers(f"http://{sse}/health"), 60, what="push again")
        supervisor.proc.send_signal(signal.SIGINT)
        assert supervisor.proc.wait(60) == 0
    finally:
        supervisor.stop(signal.SIGTERM)

    lines = supervisor.log().splitlines()
    records = [json.loads(line) for line in lines]  # each line, or it fails here
    secret = (tmp_path / "api-key").read_text().strip()
    assert secret not in supervisor.log()
    by_logger = {record["logger"] for record in records}
    assert {"supervisord", "api.cli", "gunicorn.error", "workers.push"} <= by_logger
    assert any(r["message"].startswith("loaded 1 employees") for r in records)
    exits = [
        r
        for r in records
        if r["logger"] == "supervisord" and r["message"].startswith("exited: push")
    ]
    assert exits == [
        {
            **exits[0],
            "level": "warning",
            "program": "push",
            "message": "exited: push (terminated by SIGKILL; not expected)",
        }
    ]
