"""Real processes for end-to-end tests: gunicorn, the push worker, their helpers."""

import dataclasses
import hashlib
import os
import signal
import sys
from pathlib import Path
from typing import Optional

import requests
import sqlalchemy

from core.settings import Settings
from db.keys import KeyStore
from db.schema import create_schema
from db.sql import Database
from tests.support.processes import ROOT
from tests.support.processes import Process
from tests.support.processes import free_port
from tests.support.processes import free_ports
from tests.support.processes import free_udp_port
from tests.support.processes import wait_until

#: A PostgreSQL database to run the tests on instead of SQLite files (.ci/run).
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


#: The address settings of each test (by tmp_path), on free ports: its
#: processes and its in-process settings share them, and no two tests do.
_ADDRESSES = {}


def addresses(tmp_path: Optional[Path]) -> dict:
    """The address settings of the test that owns ``tmp_path``, by variable.

    The defaults are the addresses of ``make serve`` (gunicorn's 8000, the
    broker's 5555 and 5560, the push worker's 5556, 8001 and 5557): a test on
    them would talk to, or collide with, a ``make serve`` on the same machine.
    ``None``: the test session's own, for what owns no ``tmp_path``.
    """
    if tmp_path not in _ADDRESSES:
        port, frontend, backend, pub, sse = free_ports(5)
        _ADDRESSES[tmp_path] = {
            "PORT": str(port),
            "COLLATZ_FRONTEND": f"tcp://127.0.0.1:{frontend}",
            "COLLATZ_BACKEND": f"tcp://127.0.0.1:{backend}",
            "PUSH_PUB_ENDPOINT": f"tcp://127.0.0.1:{pub}",
            "PUSH_SSE_BIND": f"127.0.0.1:{sse}",
            # The commit nudges of the test's API reach its push worker only.
            "PUSH_WAKE_ADDRESS": f"127.0.0.1:{free_udp_port()}",
        }
    return _ADDRESSES[tmp_path]


def settings_for(tmp_path: Path, **values) -> Settings:
    """In-process settings of a test: its database and :func:`addresses`.

    ``values`` (Settings fields) go on top.
    """
    environ = {**addresses(tmp_path), "DATABASE_URL": database_url(tmp_path)}
    return dataclasses.replace(Settings.from_env(environ), **values)


def database_url(tmp_path: Path) -> str:
    """The database of the test that owns ``tmp_path``.

    A SQLite file in ``tmp_path``, or with ``TEST_DATABASE_URL`` a PostgreSQL
    schema named after ``tmp_path`` (the ``database_url`` fixture creates and
    drops it), so the test's processes and the test itself share one database.
    """
    if not TEST_DATABASE_URL:
        return f"sqlite:///{tmp_path / 'test.db'}"
    schema = "test_" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:16]
    url = sqlalchemy.engine.make_url(TEST_DATABASE_URL)
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def child_env(tmp_path: Path, extra: dict) -> dict:
    """A child's environment: this one's, the test's database and addresses.

    ``extra`` goes on top.
    """
    env = dict(os.environ)
    env.update(addresses(tmp_path))
    env["DATABASE_URL"] = database_url(tmp_path)
    # Notes in the test's SQL database unless the test names a RethinkDB
    # (tests.support.notes_backends): a RETHINKDB_URL of the environment
    # is for the tests that ask for it.
    env["RETHINKDB_URL"] = ""
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def make_key(tmp_path: Path, scope: str = "admin", name: str = "") -> str:
    """A new API key with ``scope`` in the database of the test of ``tmp_path``."""
    database = Database(database_url(tmp_path))
    try:
        create_schema(database.engine)
        return KeyStore(database).create(name or f"test-{scope}", scope)[1]
    finally:
        database.dispose()


class LiveServer(Process):
    """Gunicorn serving api.wsgi:app under the interpreter running the tests.

    With ``AUTH=off`` unless ``env`` says otherwise: the end-to-end tests of
    the other parts call the API as a trusted client; the tests of keys
    (and of reads after writes) turn it on and send keys
    (:func:`make_key`).
    """

    def __init__(self, tmp_path: Path, env: dict, workers: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = child_env(
            tmp_path,
            {
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                "WORKERS": str(workers),
                "AUTH": "off",
                **env,
            },
        )
        super().__init__(
            [sys.executable, "-m", "api", "serve"],
            env,
            tmp_path / f"gunicorn-{self.port}.log",
        )

    def start(self) -> None:
        super().start()
        wait_until(
            self._healthy, timeout=60, what=f"gunicorn on {self.url}\n{self.log_path}"
        )

    def stop(self, sig=signal.SIGINT, timeout: float = 20.0) -> None:
        """Quick shutdown (SIGINT): a graceful one (SIGTERM) lets the gevent
        workers wait out idle keep-alive connections, `keepalive` seconds."""
        super().stop(sig, timeout)

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{self.log()}")
        try:
            return requests.get(self.url + "/health", timeout=1).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            # A worker still booting on a loaded machine may accept the
            # connection and answer late: keep polling until the deadline.
            return False


class PushWorkerProcess(Process):
    """``python -m workers.push`` under this interpreter, on free ports.

    Shares the test's database (``child_env``): start it with the same
    ``env`` as the live server and both see one notes store. Its streams
    need a key (``AUTH=on``, the default) unless ``env`` turns it off as
    for the API: :meth:`auth` makes one.
    """

    def __init__(self, tmp_path: Path, env: Optional[dict] = None, args=()):
        self.tmp_path = tmp_path
        self._key: Optional[str] = None
        pub, sse = free_ports(2)
        self.pub_endpoint = f"tcp://127.0.0.1:{pub}"
        self.sse_url = f"http://127.0.0.1:{sse}"
        host_port = self.sse_url[len("http://") :]
        env = child_env(
            tmp_path,
            {
                "PUSH_PUB_ENDPOINT": self.pub_endpoint,
                "PUSH_SSE_BIND": host_port,
                **(env or {}),
            },
        )
        super().__init__(
            [sys.executable, "-m", "workers.push", *args],
            env,
            tmp_path / f"push-{host_port.split(':')[1]}.log",
        )

    def start(self) -> None:
        super().start()
        wait_until(self.health, timeout=60, what=f"push worker\n{self.log_path}")

    def health(self) -> Optional[dict]:
        """``GET /health`` of the worker, or None while it does not answer."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"push worker exited:\n{self.log()}")
        try:
            return requests.get(self.sse_url + "/health", timeout=2).json()
        except (requests.ConnectionError, requests.Timeout):
            return None

    def auth(self) -> dict:
        """The ``Authorization`` header of a ``read`` key (made on first use)."""
        if self._key is None:
            port = self.sse_url.rsplit(":", 1)[1]
            self._key = make_key(self.tmp_path, "read", name=f"push-{port}-reader")
        return {"Authorization": f"Bearer {self._key}"}

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last checkpoint."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def wait_subscribed(self, topic: str) -> None:
        """Until a SUB client subscribes to ``topic`` (ZeroMQ drops what is earlier)."""
        wait_until(
            lambda: topic in (self.health() or {}).get("pub_topics", ()),
            timeout=30,
            what=f"a SUB subscription to {topic!r}",
        )

    def wait_webhooks(self, count: int) -> None:
        """Until ``count`` webhook subscriptions have a delivering thread."""
        wait_until(
            lambda: len((self.health() or {}).get("webhooks", ())) == count,
            timeout=30,
            what=f"{count} webhook subscriptions",
        )

    def wait_head(self, seq: int) -> dict:
        """Until the worker has read the change ``seq``; its health then."""

        def there() -> Optional[dict]:
            health = self.health()
            return health if health and health["head"] >= seq else None

        return wait_until(there, timeout=30, what=f"worker at {seq}")
