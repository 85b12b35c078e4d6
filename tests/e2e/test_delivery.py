"""End to end: every acknowledged write reaches the push stream, whatever dies.

Steady writes over HTTP while gunicorn workers (and once the push worker)
are killed with SIGKILL, on each notes store: every create and patch that
was answered 2xx must arrive on an SSE client, in ``id`` order. A worker
killed between committing a note and logging its change (RethinkDB), or
between taking a number and committing, must not cost a change or stall
the stream.
"""

import os
import signal
import time
from pathlib import Path

from tests.support.push_clients import SseCollector
from tests.support.write_load import WriteLoad
from tests.support.write_load import in_order
from tests.support.write_load import missing


def gunicorn_workers(master_pid: int) -> list:
    """The pids of a gunicorn master's worker processes (Linux /proc)."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    return [int(pid) for pid in children.read_text().split()]


def test_kill_9_of_gunicorn_workers_and_the_push_worker_loses_no_acked_write(
    live_server, push_worker, notes_backend
):
    server = live_server(env=notes_backend.env, workers=3)
    worker = push_worker(notes_backend.env)
    stream = SseCollector(
        worker.sse_url + "/events", last_event_id=0, headers=worker.auth()
    )
    load = WriteLoad(server.url, threads=4).start()
    killed = 0
    try:
        deadline = time.monotonic() + 60
        while killed < 6 and time.monotonic() < deadline:
            time.sleep(0.7)
            if len(load.acked) < 10 * (killed + 1):
                continue  # let writes through between kills (workers restart)
            pids = gunicorn_workers(server.proc.pid)
            if pids:
                os.kill(pids[killed % len(pids)], signal.SIGKILL)
                killed += 1
            if killed == 3:
                worker.kill()  # the push worker too, mid-stream
                worker.start()
        # Enough writes after the last kill too, on a slow machine as well.
        enough = time.monotonic() + 60
        while len(load.acked) <= 100 and time.monotonic() < enough:
            time.sleep(0.2)
    finally:
        load.stop()
    assert killed == 6
    try:
        events = stream.wait_for(
            lambda got: not missing(load.acked, got),
            "every acknowledged write",
            timeout=90,
        )
    finally:
        stream.close()
    assert len(load.acked) > 100
    assert in_order(events)
    # The killed requests got no answer; nothing was refused with an error.
    assert {status for _, status in load.answers} <= {0, 200, 201}
    assert "Traceback" not in worker.log()
