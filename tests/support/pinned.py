"""Keep-alive connections pinned to each gunicorn worker of a live server."""

import http.client
import json
import os
from typing import List
from typing import Optional
from typing import Set

from tests.support.live import LiveServer
from tests.support.processes import wait_until


def worker_pids(server: LiveServer) -> Set[int]:
    """The pids of gunicorn's workers: the children of its master."""
    pids = set()
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # not a process, or gone
            continue
        if int(fields[1]) == server.proc.pid:  # its parent
            pids.add(int(entry))
    return pids


def worker_of(server: LiveServer, client_port: int) -> Optional[int]:
    """The pid of the worker holding the connection from ``client_port``."""
    inode = None
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if local.endswith(f":{server.port:04X}") and remote.endswith(
                f":{client_port:04X}"
            ):
                inode = fields[9]
    for pid in worker_pids(server):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
        except OSError:  # gone
            continue
    return None


class PinnedConnection:
    """One keep-alive HTTP connection to ``server``, so one worker, found in /proc.

    Start the server with a long keep-alive (``GUNICORN_CMD_ARGS=--keep-alive
    300``) so that the connection stays with its worker between requests.
    """

    def __init__(self, server: LiveServer, key: Optional[str] = None):
        self._key = key
        self._http = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        self._http.connect()
        port = self._http.sock.getsockname()[1]
        # Until a worker accepts it, the connection waits in the backlog.
        self.worker = wait_until(
            lambda: worker_of(server, port), timeout=10, what="a worker accepting"
        )

    def call(self, method, path, body=None, headers=None):
        """Status, headers and body (read to the end) of one request."""
        headers = dict(headers or {})
        if self._key:
            headers.setdefault("Authorization", f"Bearer {self._key}")
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self._http.request(method, path, body=body, headers=headers)
        response = self._http.getresponse()
        data = response.read()
        return response.status, response.headers, data

    def json(self, method, path, body=None, expect=200):
        """The JSON answer of one request, which must have status ``expect``."""
        status, _, data = self.call(method, path, body)
        assert status == expect, (method, path, status, data)
        return json.loads(data)

    def close(self) -> None:
        self._http.close()


def connections_to_every_worker(
    server: LiveServer, key: Optional[str] = None
) -> List[PinnedConnection]:
    """Connections until every worker of ``server`` holds at least one.

    The workers take turns accepting, in no fixed order.
    """
    made = []
    while {c.worker for c in made} != worker_pids(server):
        assert len(made) < 40, "a worker never accepted a connection"
        made.append(PinnedConnection(server, key))
    return made
