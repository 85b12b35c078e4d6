"""Real RethinkDB servers for tests: a cluster of our own that a test may kill.

The servers come from ``../shared/rethinkdb/start`` beside the repository
(RethinkDB 2.4.4 built from source, see its README), or from the script
``RETHINKDB_START`` names. Without one the tests that need it skip, or fail
when ``TEST_REQUIRE_RETHINKDB`` is set. :class:`ServerProcess` runs the
binary beside that script (``bin/rethinkdb``) itself, for options the
script does not pass (driver TLS).
"""

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import List
from typing import Optional

from rethinkdb import r

from db.rethink import Connector
from db.rethink import close_quietly
from db.rethink import parse_url
from tests.support.live import ROOT
from tests.support.processes import Process
from tests.support.processes import free_ports
from tests.support.processes import wait_until

#: The script that starts a server: DATA_DIR DRIVER_PORT CLUSTER_PORT [JOIN...].
START = Path(
    os.environ.get("RETHINKDB_START") or ROOT.parent / "shared" / "rethinkdb" / "start"
)


def start_script() -> Optional[Path]:
    """The start script, or None when this checkout has none beside it."""
    return START if START.is_file() and os.access(START, os.X_OK) else None


def server_binary() -> Optional[Path]:
    """The server the start script runs (``bin/rethinkdb`` beside it), or None."""
    binary = START.parent / "bin" / "rethinkdb"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


class ServerProcess(Process):
    """One server run from :func:`server_binary` with extra ``options``, on free ports.

    As the start script runs it (loopback only, no web UI), plus ``options``;
    its output goes to ``folder``.log. :meth:`start` returns once its driver
    port accepts connections.
    """

    def __init__(self, folder: Path, *options: str):
        self.driver_port, self.cluster_port = free_ports(2)
        binary = server_binary()
        assert binary is not None, f"no RethinkDB server beside {START}"
        super().__init__(
            [
                str(binary),
                "--directory",
                str(folder),
                "--bind",
                "127.0.0.1",
                "--driver-port",
                str(self.driver_port),
                "--cluster-port",
                str(self.cluster_port),
                "--no-http-admin",
                "--no-update-check",
                *options,
            ],
            dict(os.environ),
            folder.with_suffix(".log"),
        )

    def start(self) -> None:
        super().start()
        wait_until(self._listening, timeout=60, what="the RethinkDB server listening")

    def _listening(self) -> bool:
        assert self.proc.poll() is None, f"rethinkdb exited: {self.log()[-2000:]}"
        try:
            socket.create_connection(("127.0.0.1", self.driver_port), 1).close()
        except OSError:
            return False
        return True


class Server:
    """One server process: its driver port, cluster port and pid."""

    def __init__(self, pid: int, driver_port: int, cluster_port: int):
        self.pid = pid
        self.driver_port = driver_port
        self.cluster_port = cluster_port
        self.name = f"n{driver_port}"  # the start script names servers so

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True


class Cluster:
    """``size`` servers on free ports, joined into one cluster, under ``folder``."""

    def __init__(self, folder: Path, size: int = 3, bind: Optional[str] = None):
        self.folder = folder
        self.size = size
        #: An address the servers listen on besides loopback (and :attr:`url`
        #: names), for clients in other network namespaces.
        self.bind = bind
        self.servers: List[Server] = []

    def start(self) -> "Cluster":
        script = start_script()
        assert script is not None, f"no RethinkDB start script at {START}"
        ports = free_ports(2 * self.size)
        for number in range(self.size):
            driver, cluster = ports[2 * number : 2 * number + 2]
            joins = (
                [f"127.0.0.1:{self.servers[0].cluster_port}"] if self.servers else []
            )
            pid = self._launch(number, driver, cluster, joins)
            self.servers.append(Server(pid, driver, cluster))
        wait_until(
            lambda: self._count_servers() == self.size,
            timeout=60,
            what=f"a cluster of {self.size}",
        )
        return self

    @property
    def url(self) -> str:
        """``rethinkdb://`` with every server, database ``test``."""
        host = self.bind or "127.0.0.1"
        hosts = ",".join(f"{host}:{s.driver_port}" for s in self.servers)
        return f"rethinkdb://{hosts}/test"

    def url_with_first(self, first: Server) -> str:
        """:attr:`url` with ``first`` first (the host every process tries first)."""
        order = [first] + [s for s in self.servers if s is not first]
        host = self.bind or "127.0.0.1"
        hosts = ",".join(f"{host}:{s.driver_port}" for s in order)
        return f"rethinkdb://{hosts}/test"

    @contextlib.contextmanager
    def connection(self):
        """A connection to a live server of the cluster."""
        conn = Connector(parse_url(self.url), timeout=10).connect()
        try:
            yield conn
        finally:
            close_quietly(conn)

    def _count_servers(self) -> int:
        with self.connection() as conn:
            return r.db("rethinkdb").table("server_status").count().run(conn)

    def primary_of(self, db: str, table: str) -> Server:
        """The server that holds the primary replica of ``table`` in ``db`` now."""
        with self.connection() as conn:
            status = r.db(db).table(table).status().run(conn)
        (name,) = status["shards"][0]["primary_replicas"]
        return next(s for s in self.servers if s.name == name)

    def kill(self, server: Server) -> None:
        """SIGKILL: the server dies without a word to its peers."""
        os.kill(server.pid, signal.SIGKILL)
        wait_until(lambda: not server.alive(), timeout=10, what="the server dead")

    def restart(self, server: Server) -> None:
        """Start ``server`` again on its data folder and ports (after :meth:`kill`)."""
        number = self.servers.index(server)
        joins = [
            f"127.0.0.1:{s.cluster_port}" for s in self.servers if s is not server
        ][:1]
        server.pid = self._launch(
            number, server.driver_port, server.cluster_port, joins
        )

    def _launch(self, number: int, driver: int, cluster: int, joins: List[str]) -> int:
        """Start server ``number`` in the background; its pid once it listens."""
        folder = self.folder / f"rdb{number}"
        if self.bind is None:
            out = subprocess.run(
                [str(start_script()), str(folder), str(driver), str(cluster)] + joins,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            return int(out.stdout.split()[-1])
        # The start script binds loopback only: the binary beside it, with
        # the script's options and the extra address. Started by a shell that
        # exits at once, as the script does, so that a killed server is
        # nobody's zombie (alive() tells a dead one by its pid).
        binary = server_binary()
        assert binary is not None, f"no RethinkDB server beside {START}"
        folder.parent.mkdir(parents=True, exist_ok=True)
        args = [
            str(binary),
            "--directory",
            str(folder),
            "--bind",
            "127.0.0.1",
            "--bind",
            self.bind,
            "--driver-port",
            str(driver),
            "--cluster-port",
            str(cluster),
            "--no-http-admin",
            "--no-update-check",
            "--server-name",
            f"n{driver}",
        ]
        for join in joins:
            args += ["--join", join]
        out = subprocess.run(
            ["sh", "-c", '"$@" >"$LOG" 2>&1 </dev/null & echo $!', "sh", *args],
            env={**os.environ, "LOG": f"{folder}.log"},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        pid = int(out.stdout.split()[-1])
        server = Server(pid, driver, cluster)

        def listening() -> bool:
            assert server.alive(), f"rethinkdb exited: see {folder}.log"
            try:
                socket.create_connection(("127.0.0.1", driver), 1).close()
            except OSError:
                return False
            return True

        wait_until(listening, timeout=60, what="the RethinkDB server listening")
        return pid

    def stop(self) -> None:
        """SIGTERM every server still running, then wait for them."""
        for server in self.servers:
            if server.alive():
                os.kill(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for server in self.servers:
            while server.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if server.alive():
                os.kill(server.pid, signal.SIGKILL)
