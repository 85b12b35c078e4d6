"""``make serve``'s supervisor: a crashed process comes back, Ctrl-C stops all.

supervisord runs supervisord.conf as ``make serve`` does (the processes under
this interpreter, on free ports); the test kills the push worker and the
webhook runner with SIGKILL while the API keeps answering.
"""

import os
import re
import signal
import sys
from pathlib import Path

import requests

from tests.support.live import Process
from tests.support.live import child_env
from tests.support.live import free_port
from tests.support.live import wait_until


def _spawned(log: str, name: str) -> list:
    return [int(pid) for pid in re.findall(rf"spawned: '{name}' with pid (\d+)", log)]


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

        def answers(url):
            try:
                return requests.get(url, timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(lambda: answers(api + "/health"), 90, what="the API")
        wait_until(lambda: answers(f"http://{sse}/health"), 90, what="push worker")
        wait_until(lambda: _spawned(supervisor.log(), "webhooks"), 30, what="runner")
        names = ("web", "collatz-broker", "collatz-worker-0", "webhooks", "push")
        first = {name: _spawned(supervisor.log(), name)[0] for name in names}

        for name in ("push", "webhooks"):
            os.kill(first[name], signal.SIGKILL)
        assert answers(api + "/health")  # the API is not touched
        wait_until(
            lambda: (
                len(_spawned(supervisor.log(), "push")) == 2
                and len(_spawned(supervisor.log(), "webhooks")) == 2
            ),
            60,
            what="the killed processes started again",
        )
        wait_until(lambda: answers(f"http://{sse}/health"), 60, what="push again")
        log = supervisor.log()
        assert "exited: push (terminated by SIGKILL; not expected)" in log
        assert "exited: webhooks (terminated by SIGKILL; not expected)" in log
        assert _spawned(log, "web") == [first["web"]]  # never restarted
        assert answers(api + "/health")

        supervisor.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert supervisor.proc.wait(60) == 0
        everyone = [pid for name in names for pid in _spawned(supervisor.log(), name)]
        wait_until(lambda: not any(_alive(pid) for pid in everyone), 10, what="exit")
    finally:
        supervisor.stop(signal.SIGTERM)
