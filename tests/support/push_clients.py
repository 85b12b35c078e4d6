"""Clients of the push worker for tests: a ZeroMQ SUB socket, an SSE reader,
and the notes writes (over HTTP) whose events they check."""

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional

import requests
import zmq

from gateways import curve
from tests.support.processes import wait_until


class Notes:
    """Note writes over HTTP; every call returns the note as the API shows it."""

    def __init__(self, base_url: str):
        self.url = base_url + "/notes"

    def create(self, title: str, body: str = "") -> dict:
        response = requests.post(
            self.url, json={"title": title, "body": body}, timeout=10
        )
        assert response.status_code == 201, response.text
        return response.json()

    def patch(self, note_id: str, **fields) -> dict:
        response = requests.patch(f"{self.url}/{note_id}", json=fields, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def put(self, note_id: str, title: str, body: str) -> dict:
        response = requests.put(
            f"{self.url}/{note_id}", json={"title": title, "body": body}, timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()

    def delete(self, note_id: str) -> None:
        response = requests.delete(f"{self.url}/{note_id}", timeout=10)
        assert response.status_code == 204, response.text


def first_of_each(events):
    """The events without redeliveries, in the order first received."""
    seen, unique = {}, []
    for event in events:
        if event["id"] in seen:
            assert event == seen[event["id"]], "a redelivery differs from the first"
            continue
        seen[event["id"]] = event
        unique.append(event)
    return unique


def summary(events):
    return [(e["type"], (e["new_val"] or e["old_val"])["title"]) for e in events]


class Subscriber:
    """A ZeroMQ SUB socket collecting events (decoded JSON) in arrival order.

    With ``keys`` it is a CURVE client (gateways/curve.py).
    """

    def __init__(
        self,
        endpoint: str,
        topic: bytes = b"note.",
        keys: Optional[curve.ClientKeys] = None,
    ):
        self.socket = zmq.Context.instance().socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RECONNECT_IVL, 50)
        if keys is not None:
            keys.apply(self.socket)
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

    def wait_for(
        self, predicate: Callable[[List[dict]], bool], what: str, timeout: float = 30
    ) -> List[dict]:
        """Until ``predicate(events)`` holds; the events."""
        wait_until(lambda: predicate(self.poll()), timeout=timeout, what=what)
        return self.events

    def close(self) -> None:
        self.socket.close()


def sse_events(
    url: str, headers: Optional[Dict[str, str]] = None, timeout: float = 30
) -> Iterator[dict]:
    """Yield the frames of an SSE stream as dicts (``id``, ``event``, ``data``...).

    Comments (keep-alives) are yielded as ``{"comment": text}``.
    """
    with requests.get(
        url, headers=headers or {}, stream=True, timeout=(5, timeout)
    ) as response:
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


def take_sse_events(
    url: str,
    count: int,
    headers: Optional[Dict[str, str]] = None,
    on_open: Optional[Callable[[], None]] = None,
) -> List[dict]:
    """The first ``count`` events of the stream (comments skipped), data decoded.

    ``on_open`` runs once the stream's first comment arrived (it is live).
    """
    found = []
    # Closed on return, and the stream's connection with it (not left to the
    # collector).
    with contextlib.closing(sse_events(url, headers)) as frames:
        for frame in frames:
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


class SseCollector:
    """An SSE client in a thread that collects events and reconnects like a browser.

    Connection errors (a push worker killed and restarted) are retried after
    ``retry`` seconds with ``Last-Event-ID`` = the last event received, as an
    ``EventSource`` does. ``events`` holds the decoded events in arrival order,
    ``arrivals`` when each came (``time.monotonic()``).
    """

    def __init__(
        self,
        url: str,
        last_event_id: int = 0,
        retry: float = 0.2,
        headers: Optional[Dict[str, str]] = None,
    ):
        self.url = url
        self.headers = headers or {}
        self.last_id = last_event_id
        self.retry = retry
        self.events: List[dict] = []
        self.arrivals: List[float] = []
        self.connects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.connects += 1
                headers = {**self.headers, "Last-Event-ID": str(self.last_id)}
                frames = sse_events(self.url, headers, timeout=20)
                with contextlib.closing(frames):
                    for frame in frames:
                        if self._stop.is_set():
                            return
                        if "data" in frame:
                            event = json.loads(frame["data"])
                            self.arrivals.append(time.monotonic())
                            self.events.append(event)
                            self.last_id = event["id"]
            except (requests.RequestException, OSError):
                pass
            self._stop.wait(self.retry)

    def wait_for(
        self, predicate: Callable[[List[dict]], bool], what: str, timeout: float = 60
    ) -> List[dict]:
        """Until ``predicate(events)`` holds; the events."""
        wait_until(lambda: predicate(list(self.events)), timeout=timeout, what=what)
        return list(self.events)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
