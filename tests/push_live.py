"""The real push worker process, a ZeroMQ SUB client and an SSE reader for tests."""

import json
import signal
import sys
from pathlib import Path
from typing import Callable
from typing import Dict
from typing import Iterator
from typing import List
from typing import Optional

import requests
import zmq

from tests.live import Process
from tests.live import child_env
from tests.live import free_port
from tests.live import wait_until


class PushWorkerProcess(Process):
    """``python -m workers.push`` under this interpreter, on free ports.

    Shares the test's database (``child_env``): start it with the same
    ``env`` as the live server and both see one notes store.
    """

    def __init__(self, tmp_path: Path, env: Optional[dict] = None, args=()):
        self.pub_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.sse_url = f"http://127.0.0.1:{free_port()}"
        host_port = self.sse_url[len("http://"):]
        env = child_env(tmp_path, {"PUSH_PUB_ENDPOINT": self.pub_endpoint,
                                   "PUSH_SSE_BIND": host_port, **(env or {})})
        super().__init__([sys.executable, "-m", "workers.push", *args], env,
                         tmp_path / f"push-{host_port.split(':')[1]}.log")

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

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last checkpoint."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def wait_subscribed(self, topic: str) -> None:
        """Until a SUB client subscribes to ``topic`` (ZeroMQ drops what is earlier)."""
        wait_until(lambda: topic in (self.health() or {}).get("pub_topics", ()),
                   timeout=30, what=f"a SUB subscription to {topic!r}")

    def wait_webhooks(self, count: int) -> None:
        """Until ``count`` webhook subscriptions have a delivering thread."""
        wait_until(lambda: len((self.health() or {}).get("webhooks", ())) == count,
                   timeout=30, what=f"{count} webhook subscriptions")

    def wait_head(self, seq: int) -> dict:
        """Until the worker has read the change ``seq``; its health then."""
        def there() -> Optional[dict]:
            health = self.health()
            return health if health and health["head"] >= seq else None

        return wait_until(there, timeout=30, what=f"worker at {seq}")


class Subscriber:
    """A ZeroMQ SUB socket collecting events (decoded JSON) in arrival order."""

    def __init__(self, endpoint: str, topic: bytes = b"note."):
        self.socket = zmq.Context.instance().socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RECONNECT_IVL, 50)
        self.socket.setsockopt(zmq.SUBSCRIBE, topic)
        self.socket.connect(endpoint)
        self.topics: List[bytes] = []
        self.events: List[dict] = []

    def poll(self) -> List[dict]:
        """Take every message waiting; all events received so far."""
        while self.socket.poll(0):
            topic, body = self.socket.recv_multipart()
            self.topics.append(topic)
            self.events.append(json.loads(body))
        return self.events

    def wait_for(self, predicate: Callable[[List[dict]], bool], what: str,
                 timeout: float = 30) -> List[dict]:
        """Until ``predicate(events)`` holds; the events."""
        wait_until(lambda: predicate(self.poll()), timeout=timeout, what=what)
        return self.events

    def close(self) -> None:
        self.socket.close()


def sse_events(url: str, headers: Optional[Dict[str, str]] = None,
               timeout: float = 30) -> Iterator[dict]:
    """Yield the frames of an SSE stream as dicts (``id``, ``event``, ``data``...).

    Comments (keep-alives) are yielded as ``{"comment": text}``.
    """
    with requests.get(url, headers=headers or {}, stream=True,
                      timeout=(5, timeout)) as response:
        response.raise_for_status()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        frame: Dict[str, str] = {}
        # chunk_size=1: a bigger read would wait for that many bytes.
        for line in response.iter_lines(chunk_size=1, decode_unicode=True):
            if line == "":
                if frame:
                    yield frame
                frame = {}
            elif line.startswith(":"):
                yield {"comment": line[1:].strip()}
            else:
                field, _, value = line.partition(":")
                frame[field] = value[1:] if value.startswith(" ") else value


def take_sse_events(url: str, count: int, headers: Optional[Dict[str, str]] = None,
                    on_open: Optional[Callable[[], None]] = None) -> List[dict]:
    """The first ``count`` events of the stream (comments skipped), data decoded.

    ``on_open`` runs once the stream's first comment arrived (it is live).
    """
    found = []
    for frame in sse_events(url, headers):
        if "comment" in frame:
            if on_open is not None:
                on_open()
                on_open = None
            continue
        if "data" not in frame:  # "retry:" and such
            continue
        found.append({**frame, "data": json.loads(frame["data"])})
        if len(found) == count:
            return found
    raise AssertionError(f"the stream ended after {found}")
