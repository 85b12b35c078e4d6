"""wrk's output, parsed from the line its done hook writes."""

import pytest

from bench import wrk

WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:8000/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.45ms    3.04ms  32.16ms   89.55%
  9800 requests in 2.00s, 1.2MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   4900.00
BENCH_JSON {"duration_us": 2000000, "requests": 9800, "bytes": 1200000, \
"errors": {"connect": 0, "read": 1, "write": 0, "status": 3, "timeout": 2}, \
"latency_us": {"min": 100, "mean": 1450.5, "max": 32160, "stdev": 3040.0, \
"p50": 900, "p90": 2500, "p99": 15000, "p99.9": 30000}}
"""


def test_wrk_output_is_parsed_from_the_done_hook_line():
    result = wrk.parse(WRK_OUTPUT)
    assert result["rps"] == pytest.approx(4900.0)
    assert result["requests"] == 9800
    assert result["seconds"] == pytest.approx(2.0)
    assert result["errors"] == {
        "connect": 0,
        "read": 1,
        "write": 0,
        "status": 3,
        "timeout": 2,
        "total": 6,
    }
    assert result["latency_ms"]["p50"] == pytest.approx(0.9)
    assert result["latency_ms"]["p99"] == pytest.approx(15.0)
    assert result["latency_ms"]["p99.9"] == pytest.approx(30.0)


def test_wrk_output_without_result_line_is_an_error():
    with pytest.raises(wrk.WrkError, match="BENCH_JSON"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n")
