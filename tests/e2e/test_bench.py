"""The benchmark harness: its wrk script, k6 writes, a smoke run.

Nothing here asserts how fast anything is; the e2e tests only check that
measuring works and produces well-formed results.
"""

import http.server
import json
import shutil
import subprocess
import sys
import threading
import time

import pytest

from bench import common
from bench import paths
from tests.support.live import ROOT

needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (make bench installs it)"
)


# --- against a local stub server -----------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real server
    # Headers and body leave in separate writes: without this, Nagle's
    # algorithm and the client's delayed ACK hold each answer up to 40 ms.
    disable_nagle_algorithm = True

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.server.seen.append(
            (self.command, self.path, body, self.headers.get("X-Bench"))
        )
        status, payload = 200, b'{"ok": true}'
        if self.path == "/notes" and self.command == "POST":
            status, payload = 201, b'{"id": "n%d"}' % len(self.server.seen)
        elif self.path.startswith("/slow"):
            time.sleep(0.02)  # service time of the fake server
        elif self.path.startswith("/fail"):
            status = 500
        elif self.path.startswith("/missing"):
            status = 404
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.daemon_threads = True
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(common.k6() is None, reason="k6 is not installed")
def test_k6_writes_record_each_created_note_and_its_answer_time(stub, tmp_path):
    server, url = stub
    started = time.time()
    load = common.post_notes(url, rate=20, seconds=1, folder=tmp_path)
    posted = [entry for entry in server.seen if entry[:2] == ("POST", "/notes")]
    assert load["sent"] == load["created"] == len(posted) >= 20
    assert load["failed"] == 0 and load["dropped"] == 0
    assert json.loads(posted[0][2])["body"] == "bench"
    assert len(load["answered"]) == len(posted)
    assert all(started < at < time.time() for at in load["answered"].values())
    assert list(tmp_path.glob("writes-*.json")) == []  # its samples are not kept


def test_probe_reports_missing_endpoint_as_not_available(stub):
    _, url = stub
    api = paths.Api(url)
    assert paths.Target("ok", "GET /ok", "/ok").prepare(api) == "/ok"
    with pytest.raises(paths.NotAvailable, match="answers 404"):
        paths.Target("missing", "GET /missing", "/missing").prepare(api)


@needs_wrk
def test_wrk_script_sends_unique_bodies_and_counters(stub, tmp_path):
    server, url = stub
    bodies = tmp_path / "bodies"
    lines = [f'{{"n": {i}}}' for i in range(100_000)]
    bodies.write_text("\n".join(lines) + "\n")
    result = common.wrk(
        url,
        "/ok",
        seconds=1,
        connections=2,
        threads=2,
        method="POST",
        body_file=bodies,
        headers={"X-Bench": "b"},
    )
    posted = [entry for entry in server.seen if entry[0] == "POST"]
    assert result["requests"] > 0 and posted
    sent = [entry[2] for entry in posted]
    assert len(set(sent)) == len(sent)  # the stub is far slower than 100,000/s
    assert set(sent) <= set(lines)
    assert {entry[3] for entry in posted} == {"b"}

    server.seen.clear()
    common.wrk(url, "/ok?n={i}", seconds=1, connections=2, threads=2, counter=1000)
    # A POST of the first run still being answered when its wrk stopped can
    # land after the clear: only this run's GETs count.
    numbers = [int(e[1].split("=")[1]) for e in server.seen if e[0] == "GET"]
    assert numbers and len(set(numbers)) == len(numbers)
    assert min(numbers) >= 1000
    assert {n % 2 for n in numbers} == {0, 1}  # both threads, interleaved


@needs_wrk
def test_harness_smoke_run_writes_valid_results(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--only",
            "health,bare",
            "--interpreter",
            f"this={sys.executable}",
            "--warmup",
            "0",
            "--duration",
            "1",
            "--server-warmup",
            "0",
            "--workers",
            "1",
            "--no-worker-classes",
            "--no-figures",
            "--no-chart",
            "--out",
            str(tmp_path),
            "--name",
            "smoke",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout
    results = json.loads((tmp_path / "smoke.json").read_text())
    assert results["interpreters"] == ["this"]
    health = results["paths"][0]
    assert health["name"] == "health"
    for row in (health, results["bare"]):
        measured = row["results"]["this"]
        assert measured["available"] is True
        assert measured["requests"] > 0
        assert set(measured["latency_ms"]) >= {"p50", "p99"}
    assert "GET /health" in (tmp_path / "smoke.md").read_text()
