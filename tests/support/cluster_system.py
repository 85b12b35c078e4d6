"""The whole system on this machine as if on many: the cluster test's processes.

Every part that runs on a machine of its own in production gets a network
namespace (tests.support.netns) and binds that machine's address, with the
ports of ``make serve`` (no other process shares its namespace):

- ``api1``-``api3``: gunicorn, ``python -m api serve``;
- ``push1``, ``push2``: ``python -m workers.push``;
- ``runner1``, ``runner2``: ``python -m workers.webhooks.runner``;
- ``broker``: ``python -m workers.collatz.broker``; ``collatz1``, ``collatz2``:
  its workers, with CURVE keys (``python -m api zmq-keys``).

The stores run on this host and listen on its bridge address: PostgreSQL
(``.ci/postgres``) for the SQL store, three RethinkDB servers
(tests.support.rethinkdb_servers) for the notes, tables made by ``python -m
api init-db`` with ``RETHINKDB_REPLICAS=3``. :meth:`System.close` stops and
removes all of it, whatever state it is in.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict
from typing import Optional

import requests

from tests.support.collatz_cluster import HEARTBEAT
from tests.support.netns import Network
from tests.support.processes import ROOT
from tests.support.processes import Process
from tests.support.processes import wait_until
from tests.support.rethinkdb_servers import Cluster

#: The ports of ``make serve``, each in a namespace of its own.
API_PORT = 8000
SSE_PORT = 8001
PUB_PORT = 5556
FRONTEND_PORT = 5555
BACKEND_PORT = 5560

API_NODES = ("api1", "api2", "api3")
PUSH_WORKERS = ("push1", "push2")
RUNNERS = ("runner1", "runner2")
COLLATZ_WORKERS = ("collatz1", "collatz2")

#: What each machine runs: ``python -m`` this, with these arguments.
PROGRAMS = {
    **{name: ("api", ["serve"]) for name in API_NODES},
    **{name: ("workers.push", []) for name in PUSH_WORKERS},
    **{name: ("workers.webhooks.runner", []) for name in RUNNERS},
    "broker": ("workers.collatz.broker", HEARTBEAT),
    **{name: ("workers.collatz.worker", HEARTBEAT) for name in COLLATZ_WORKERS},
}


class System:
    """The stores, the network and every process of the cluster, under ``folder``.

    ``env``: settings every process gets on top of the topology's.
    """

    def __init__(self, folder: Path, env: Dict[str, str]):
        self.folder = folder
        self.extra_env = env
        self.network = Network()
        self.rethinkdb: Optional[Cluster] = None
        # Outside pytest's folders, which only root may enter: the server
        # runs as the user postgres.
        self.pg_dir = Path(tempfile.mkdtemp(prefix="cluster-postgres-"))
        self.database_url = ""
        self.processes: Dict[str, Process] = {}

    # Start

    def start(self) -> "System":
        self.network.start()
        for name in PROGRAMS:
            self.network.add(name)
        self._start_postgres()
        self.rethinkdb = Cluster(self.folder / "rethinkdb", 3, self.network.host)
        self.rethinkdb.start()
        self._run("api", "zmq-keys", str(self.folder / "keys"))
        init = self._run(
            "api", "init-db", env={"RETHINKDB_REPLICAS": "3", "LOG_LEVEL": "info"}
        )
        assert "(3 replicas)" in init.stderr, init.stderr
        for name in PROGRAMS:
            self.processes[name] = Process(
                self.network.command(name, [sys.executable, "-m", *self._argv(name)]),
                self.env(name),
                self.folder / f"{name}.log",
            )
        # The broker first: the API nodes and workers connect to it.
        self.processes["broker"].start()
        for name in PROGRAMS:
            if name != "broker":
                self.processes[name].start()
        for name in PROGRAMS:
            self.wait_ready(name)
        return self

    def _start_postgres(self) -> None:
        bridge = f"{self.network.host}/{self.network.subnet.prefixlen}"
        out = subprocess.run(
            [str(ROOT / ".ci" / "postgres"), "start", str(self.pg_dir), bridge],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        local = out.stdout.split()[-1]
        # The same server, by the address the namespaces reach.
        self.database_url = local.replace("@127.0.0.1:", f"@{self.network.host}:")

    def _argv(self, name: str):
        module, args = PROGRAMS[name]
        return [module, *args]

    def _run(self, *argv: str, env: Optional[dict] = None):
        """``python -m ARGV`` on this host with the common settings."""
        done = subprocess.run(
            [sys.executable, "-m", *argv],
            cwd=ROOT,
            env={**self.common_env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done

    # Settings

    def address(self, name: str) -> str:
        return self.network.machines[name].address

    def url(self, name: str) -> str:
        """The base URL of an API node, or of a push worker's HTTP server."""
        port = SSE_PORT if name in PUSH_WORKERS else API_PORT
        return f"http://{self.address(name)}:{port}"

    def common_env(self) -> Dict[str, str]:
        """The settings every process gets."""
        assert self.rethinkdb is not None
        broker = self.address("broker")
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": self.database_url,
            "RETHINKDB_URL": self.rethinkdb.url,
            "RETHINKDB_TABLE": "notes",
            "RETHINKDB_TIMEOUT": "3",
            "ZMQ_KEYS_DIR": str(self.folder / "keys"),
            "COLLATZ_FRONTEND": f"tcp://{broker}:{FRONTEND_PORT}",
            "COLLATZ_BACKEND": f"tcp://{broker}:{BACKEND_PORT}",
            # Machines apart: no commit datagrams, the stores wake the workers.
            "PUSH_WAKE_ADDRESS": "",
            "ALLOWED_PRIVATE_TARGETS": str(self.network.subnet),
            "ALLOWED_HOSTS": ",".join(
                machine.address for machine in self.network.machines.values()
            ),
            **self.extra_env,
        }

    def env(self, name: str) -> Dict[str, str]:
        """The environment of machine ``name``'s process."""
        address = self.address(name)
        env = self.common_env()
        if name in API_NODES:
            env.update(HOST=address, PORT=str(API_PORT), WORKERS="2")
        elif name in PUSH_WORKERS:
            env.update(
                PUSH_SSE_BIND=f"{address}:{SSE_PORT}",
                PUSH_PUB_ENDPOINT=f"tcp://{address}:{PUB_PORT}",
            )
        elif name == "broker":
            env.update(
                COLLATZ_FRONTEND=f"tcp://{address}:{FRONTEND_PORT}",
                COLLATZ_BACKEND=f"tcp://{address}:{BACKEND_PORT}",
            )
        return env

    # Life and death

    def wait_ready(self, name: str) -> None:
        """Until machine ``name``'s process answers (or has had time to connect)."""
        process = self.processes[name]
        if name in API_NODES or name in PUSH_WORKERS:

            def healthy() -> bool:
                process.check()
                try:
                    answer = requests.get(self.url(name) + "/health", timeout=2)
                except requests.RequestException:
                    return False
                return answer.status_code == 200

            wait_until(healthy, timeout=120, what=f"{name} healthy\n{process.log_path}")
        else:
            process.check()

    def kill(self, name: str) -> None:
        """SIGKILL to machine ``name``'s processes (gunicorn: master and workers)."""
        process = self.processes[name]
        os.killpg(process.proc.pid, signal.SIGKILL)
        process.proc.wait(10)

    def restart(self, name: str) -> None:
        """Start machine ``name``'s process again and wait until it is ready."""
        process = self.processes[name]
        process.stop()
        process.start()
        self.wait_ready(name)

    def close(self) -> None:
        """Stop every process, the stores and the network (also half started)."""
        for process in self.processes.values():
            if process.proc is not None and process.proc.poll() is None:
                os.killpg(process.proc.pid, signal.SIGKILL)
            process.stop()
        if self.rethinkdb is not None:
            self.rethinkdb.stop()
        if (self.pg_dir / "data").is_dir():
            subprocess.run(
                [str(ROOT / ".ci" / "postgres"), "stop", str(self.pg_dir)],
                capture_output=True,
                timeout=120,
                check=False,
            )
        shutil.rmtree(self.pg_dir, ignore_errors=True)
        self.network.close()
