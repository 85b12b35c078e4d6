"""The benchmark harness: its arithmetic, wrk script, load generator, a smoke run.

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

from bench import load
from bench import paths
from bench import wrk
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
        status = 200
        if self.path.startswith("/slow"):
            time.sleep(0.02)  # service time of the fake server
        elif self.path.startswith("/fail"):
            status = 500
        elif self.path.startswith("/missing"):
            status = 404
        payload = b'{"ok": true}'
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


def test_load_run_answers_and_counts_http_errors(stub):
    server, url = stub
    ok = load.LoadRun(url, "/ok", rate=100, duration=0.2, connections=4).run()
    assert ok["due"] == ok["answered"] == 20
    assert ok["error_count"] == 0 and ok["unfinished"] == 0
    failing = load.LoadRun(
        url,
        "/fail",
        rate=100,
        duration=0.1,
        method="POST",
        body=b"{}",
        headers={"X-Bench": "yes"},
    ).run()
    assert failing["errors"] == {"HTTP 500": 10}
    posted = [entry for entry in server.seen if entry[1] == "/fail"]
    assert posted[0] == ("POST", "/fail", "{}", "yes")


def test_load_latency_counts_from_the_intended_send_time(stub):
    # One connection, 20 ms per request, 20 requests due within 95 ms: the last
    # one cannot be answered before 400 ms after the start, so measured from
    # when it was due it waited at least 305 ms. A closed-loop client would
    # report about 20 ms for every request.
    _, url = stub
    summary = load.LoadRun(url, "/slow", rate=200, duration=0.1, connections=1).run()
    assert summary["answered"] == 20
    assert summary["latency_ms"]["max"] >= 300


def test_load_does_not_count_its_own_lag_as_latency(stub):
    # The client stalls itself for 1 s after the first answer (as a busy
    # client would): the requests due meanwhile go out late, but the server
    # answers each in well under 1 s (a busy machine too), and that is what
    # is reported; the client's lag is reported apart, and the run says it
    # fell behind.
    _, url = stub
    stalled = []

    def stall(index, status, body, at):
        if not stalled:
            stalled.append(index)
            time.sleep(1.0)

    summary = load.LoadRun(
        url, "/ok", rate=200, duration=0.3, connections=4, on_answer=stall
    ).run()
    assert summary["answered"] == 60
    assert summary["latency_ms"]["max"] < 1000
    assert summary["generator_lag_ms"]["max"] >= 900
    assert summary["generator_behind"] is True


def test_load_reads_answers_with_their_bodies(stub):
    _, url = stub
    bodies = {}
    summary = load.LoadRun(
        url,
        "/ok",
        rate=100,
        duration=0.1,
        method="POST",
        bodies=lambda i: b'{"n": %d}' % i,
        on_answer=lambda i, status, body, at: bodies.setdefault(i, (status, body)),
    ).run()
    assert summary["answered"] == 10
    assert bodies == {i: (200, b'{"ok": true}') for i in range(10)}


def test_responses_are_parsed_by_length_chunks_or_close():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
    assert load.parse_response(head + b"o", at_eof=False) is None
    assert load.parse_response(head + b"ok", at_eof=False) == (200, b"ok", True)
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert load.parse_response(chunked + b"2\r\nab\r\n", at_eof=False) is None
    assert load.parse_response(
        chunked + b"2\r\nab\r\n1\r\nc\r\n0\r\n\r\n", at_eof=False
    ) == (200, b"abc", True)
    closing = b"HTTP/1.1 503 Busy\r\nConnection: close\r\n\r\nno"
    assert load.parse_response(closing, at_eof=False) is None
    assert load.parse_response(closing, at_eof=True) == (503, b"no", False)


def test_load_command_line_writes_json(stub, tmp_path):
    _, url = stub
    out = tmp_path / "load.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
            "--url",
            url,
            "--path",
            "/ok",
            "--rate",
            "50",
            "--duration",
            "0.2",
            "--header",
            "X-Bench: 1",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr  # no progress line when stderr is not a terminal
    summary = json.loads(out.read_text())
    assert summary["answered"] == 10
    assert set(summary["latency_ms"]) == {"p50", "p90", "p99", "p99.9", "max", "mean"}


def test_probe_reports_missing_endpoint_as_not_available(stub):
    _, url = stub
    api = paths.Api(url)
    assert paths.Target("ok", "GET /ok", "/ok").prepare(api) == "/ok"
    with pytest.raises(paths.NotAvailable) as caught:
        paths.Target("missing", "GET /missing", "/missing").prepare(api)
    assert caught.value.status == 404


@needs_wrk
def test_wrk_script_sends_unique_bodies_and_counters(stub, tmp_path):
    server, url = stub
    bodies = tmp_path / "bodies"
    lines = [f'{{"n": {i}}}' for i in range(100_000)]
    bodies.write_text("\n".join(lines) + "\n")
    result = wrk.run(
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
    wrk.run(url, "/ok?n={i}", seconds=1, connections=2, threads=2, counter=1000)
    numbers = [int(entry[1].split("=")[1]) for entry in server.seen]
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
