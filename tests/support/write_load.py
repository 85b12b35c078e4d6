"""Steady note writes from threads, keeping what was acknowledged and what failed.

The end-to-end delivery tests drive the API with this while they kill
processes, then check that every acknowledged write reached a subscriber.
"""

import threading
import time
from typing import List
from typing import Optional
from typing import Tuple

import requests


class WriteLoad:
    """``threads`` threads, each creating a note then patching it, in a loop.

    Every answer is kept in ``answers`` as ``(time, status)`` (status 0 for a
    request that got no answer: a worker killed under it), and every
    acknowledged write in ``acked`` as ``(type, note_id, body)``.
    """

    def __init__(self, api_url: str, threads: int = 3, pause: float = 0.01):
        self.url = api_url + "/notes"
        self.pause = pause
        self.acked: List[Tuple[str, str, str]] = []
        self.answers: List[Tuple[float, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True)
            for n in range(threads)
        ]

    def start(self) -> "WriteLoad":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _send(self, method: str, url: str, body: dict) -> Optional[dict]:
        try:
            response = requests.request(method, url, json=body, timeout=15)
            status = response.status_code
        except requests.RequestException:
            status, response = 0, None
        with self._lock:
            self.answers.append((time.monotonic(), status))
        return response.json() if status in (200, 201) else None

    def _run(self, number: int) -> None:
        i = 0
        while not self._stop.is_set():
            body = f"writer {number} note {i}"
            note = self._send("POST", self.url, {"title": f"w{number}", "body": body})
            if note is not None:
                self._ack("note.created", note["id"], body)
                patched = self._send(
                    "PATCH", f"{self.url}/{note['id']}", {"body": body + " patched"}
                )
                if patched is not None:
                    self._ack("note.updated", note["id"], patched["body"])
            i += 1
            self._stop.wait(self.pause)

    def _ack(self, kind: str, note_id: str, body: str) -> None:
        with self._lock:
            self.acked.append((kind, note_id, body))


def delivered(events: List[dict]) -> set:
    """The writes a list of events carries, as ``(type, note_id, body)``."""
    found = set()
    for event in events:
        note = event["new_val"] or event["old_val"]
        found.add((event["type"], note["id"], note["body"]))
    return found


def missing(writes, events: List[dict]) -> List[Tuple[str, str, str]]:
    """The ``writes`` (``WriteLoad.acked`` items) not (yet) in ``events``."""
    got = delivered(events)
    return [write for write in list(writes) if write not in got]


def in_order(events: List[dict]) -> bool:
    """Whether the first delivery of every event came in increasing ``id`` order."""
    seen, ids = set(), []
    for event in events:
        if event["id"] not in seen:
            seen.add(event["id"])
            ids.append(event["id"])
    return ids == sorted(ids)


def percentile(ordered: List[float], p: float) -> float:
    """The ``p``-th percentile of the sorted values ``ordered`` (nearest rank)."""
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]
