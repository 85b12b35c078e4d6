"""Note changes pushed end to end, on the embedded store (docs/performance)."""

import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench import common

#: How much each figure does: quick, full.
SIZES = {
    True: {"latency": 50, "live_s": 1.0, "load_rate": 100, "load_s": 2.0},
    False: {"latency": 300, "live_s": 6.0, "load_rate": 500, "load_s": 10.0},
}
SIZES[True].update(latency_warmup=10, live_warmup_s=0, backlog=500, load_warmup_s=1)
SIZES[False].update(latency_warmup=100, live_warmup_s=3, backlog=10000)
SIZES[False].update(load_warmup_s=20)
NOTE = json.dumps({"title": "bench", "body": "pushed"})
JSON = {"Content-Type": "application/json"}


def measure_latency(stack: common.Stack, sub: common.Arrivals, count: int, warmup: int):
    """POST, then wait for its event, ``count`` times (after ``warmup``)."""
    ms = []
    with requests.Session() as session:
        for i in range(warmup + count):
            answer = session.post(stack.url + "/notes", NOTE, headers=JSON, timeout=30)
            returned = time.time()
            note_id = answer.json()["id"]
            sub.wait_for([note_id], 30)
            if i >= warmup:
                ms.append(max(0.0, sub.at[note_id] - returned) * 1000)
    return {"count": count, "mean_ms": round(sum(ms) / len(ms), 2), **common.spread(ms)}


def measure_live(stack: common.Stack, sub: common.Arrivals, seconds: float) -> dict:
    """wrk POSTs at 4 connections for ``seconds``; the rate events reach SUB."""
    before, started = sub.count, time.time()
    posted = common.wrk(
        stack.url, "/notes", seconds=seconds, connections=4, method="POST", body=NOTE
    )
    common.wait_until(lambda: sub.count - before >= posted["requests"], 60)
    last = max(sub.at.values())
    return {
        "connections": 4,
        "notes": posted["requests"],
        "posts_per_s": round(posted["rps"], 1),
        "events_per_s": round(posted["requests"] / (last - started), 1),
    }


def measure_catch_up(stack: common.Stack, sub: common.Arrivals, count: int) -> dict:
    """``count`` changes written while the worker is stopped; how fast it sends them."""
    from db.notes.sql import SqlNotesStore
    from db.sql import Database

    stack.processes["push"].stop()  # SIGTERM: it checkpoints what it sent
    database = Database(stack.env["DATABASE_URL"])
    made = [
        SqlNotesStore(database).create(f"backlog {i}", "b").id for i in range(count)
    ]
    database.dispose()
    stack.start_worker()
    sub.wait_for(made, 120)
    times = sorted(sub.at[note_id] for note_id in made)
    return {
        "changes": count,
        "events_per_s": round((count - 1) / (times[-1] - times[0]), 1),
    }


def measure(python: str, quick: bool, sizes=None) -> dict:
    """Every figure for the server side under ``python``."""
    size = sizes or SIZES[quick]
    rate, seconds = size["load_rate"], size["load_s"]
    with contextlib.ExitStack() as stacked:
        tmp = tempfile.TemporaryDirectory(prefix="bench-push-")
        folder = Path(stacked.enter_context(tmp))
        stack = stacked.enter_context(common.Stack(python, folder, push=True))
        sub = stacked.enter_context(contextlib.closing(common.Arrivals(stack, "sub")))
        latency = (size["latency"], size["latency_warmup"])
        result = {"latency": measure_latency(stack, sub, *latency)}
        if size["live_warmup_s"]:
            measure_live(stack, sub, size["live_warmup_s"])
        result["live"] = measure_live(stack, sub, size["live_s"])
        if size["load_warmup_s"]:  # the JITs of both
            common.post_notes(stack.url, rate, size["load_warmup_s"], folder)
        with contextlib.closing(common.Arrivals(stack, "sse")) as sse:
            channels = {"sub": sub, "sse": sse}
            load = common.timed_writes(stack, folder, rate, seconds, channels)
        result["under_load"] = {"seconds": seconds, **load}
        # Last: the worker restarts cold, as after a crash.
        result["catch_up"] = measure_catch_up(stack, sub, size["backlog"])
    return result


def run(quick: bool) -> dict:
    """Under each interpreter (quick: PyPy's alone); PyPy/CPython ratios."""
    pythons = list(common.interpreters().items())[: 1 if quick else None]
    results = {
        impl: {"python": python, **measure(python, quick)} for impl, python in pythons
    }
    out = {"benchmark": "push", "store": "embedded (SQLite)", "results": results}
    if {"pypy", "cpython"} <= set(results):
        pypy, cpython = results["pypy"], results["cpython"]
        out["pypy_over_cpython"] = {
            key: common.ratio(pypy[part][field], cpython[part][field])
            for key, part, field in (
                ("latency_p50", "latency", "p50_ms"),
                ("live_events_per_s", "live", "events_per_s"),
                ("catch_up_events_per_s", "catch_up", "events_per_s"),
            )
        }
    return out


if __name__ == "__main__":
    sys.exit(common.figure_main(__doc__, run))
