"""Keep-alive connections pinned to each gunicorn worker of a live server."""

import http.client
import json
from typing import List
from typing import Optional

from tests.support.live import LiveServer
from tests.support.live import wait_until


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
            lambda: server.worker_of(port), timeout=10, what="a worker accepting"
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
    while {c.worker for c in made} != server.worker_pids():
        assert len(made) < 40, "a worker never accepted a connection"
        made.append(PinnedConnection(server, key))
    return made
