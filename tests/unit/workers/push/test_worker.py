"""The push worker in process: retries while the store is down, start-up failures."""

import dataclasses
import socket
import threading
import time

import requests

from db.errors import Unavailable
from db.notes.sql import SqlNotesStore
from db.schema import create_schema
from db.stores import open_stores
from tests.support.processes import wait_until
from tests.support.push_clients import take_sse_events
from workers.push.worker import PushWorker


def answers(url):
    try:
        return requests.get(url, timeout=2).ok
    except requests.ConnectionError:
        return False


class FlakyStore(SqlNotesStore):
    """The SQL store whose change stream fails the first ``failures`` times."""

    def __init__(self, database, failures):
        super().__init__(database, poll_interval=0.02)
        self.failures = failures
        self.calls = []

    def changes(self, since=None, *, stop=None, timeout=None):
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.failures:
            raise Unavailable("notes store unavailable")
        return super().changes(since, stop=stop, timeout=timeout)


def test_an_unavailable_store_is_retried_with_growing_pauses(settings, caplog):
    stores = open_stores(settings)
    create_schema(stores.database.engine)
    key = stores.keys.create("reader", "read")[1]
    store = FlakyStore(stores.database, failures=2)
    worker = PushWorker(
        settings, stores=dataclasses.replace(stores, notes=store), grace=0
    )
    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(worker.run()))
    runner.start()
    url = f"http://{settings.push_sse_bind}"
    try:
        wait_until(lambda: answers(url + "/health"), timeout=30, what="the SSE server")
        events = take_sse_events(
            url + "/events",
            1,
            {"Authorization": f"Bearer {key}"},
            on_open=lambda: store.create("made anyway", ""),
        )
        assert events[0]["data"]["new_val"]["title"] == "made anyway"
    finally:
        worker.stop()
        runner.join(30)
    assert outcome == [0]
    first, second, third = store.calls[:3]
    # Never a busy loop: 0.5 s, then 1 s (less at most 10 % jitter).
    assert second - first >= 0.45 and third - second >= 0.9
    assert caplog.text.count("notes store unavailable after event 0; retrying") == 2


def test_an_address_in_use_is_an_error_at_start(settings, caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = dataclasses.replace(settings, push_sse_bind=f"127.0.0.1:{port}")
        assert PushWorker(busy).run() == 1
    assert "cannot listen" in caplog.text
