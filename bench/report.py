"""The report: derived figures, the performance targets, the Markdown tables."""

import json
from typing import Any
from typing import List
from typing import Optional

from bench.common import describe_gc
from bench.common import describe_warmup
from bench.common import ratio

#: Targets that divide a path's figure under PyPy by the same path's under
#: CPython, or by the bare app's under PyPy: (what, path, over, wanted).
RATIOS = [
    ("PyPy/CPython, {label}", name, "cpython", 2.0 if name == "employees" else 1.5)
    for name in (
        "notes-get notes-list notes-post notes-patch redirect links-create "
        "department employees primes"
    ).split()
]
RATIOS += [
    ("PyPy, {label} vs the bare app", "notes-get", "bare", 0.50),
    ("PyPy, {label} vs the bare app", "redirect", "bare", 0.40),
    ("PyPy, {label} vs the bare app", "notes-post", "bare", 0.25),
]
#: Against the seed's own apps (bench/results/seed.json, measured apart):
#: (what, path, seed figure, key, wanted).
SEED_RATIOS = (
    ("GET /{code} req/s vs Pyster's", "redirect", "redirect", "rps", 2.0),
    (
        "one department (GET /dept/TREASURER) req/s vs Salary-API's",
        *("dept-seed", "department", "rps", 5.0),
    ),
    (
        "POLICE export rows/s vs Salary-API's /dept/POLICE",
        *("export", "export", "rows_per_s", 2.0),
    ),
)
POST_P99_MS = 20.0
COLLATZ_OVER_C = 2.0
#: Tails under PyPy: a path's p99 at most this many times its p50, and at
#: most this many times the bare app's p99.
TAIL_OVER_P50, TAIL_OVER_BARE = 5.0, 10.0
PUSH_RATE = 500
PUSH_P99_MS = 10.0
#: RethinkDB's rates over the embedded store's, under PyPy, in one run.
RETHINKDB_OVER_SQLITE = {
    "get": ("GET /notes/{id}", 0.80),
    "post": ("POST /notes", 0.30),
}
RETHINKDB_POST_P99_MS = 50.0


def rate(result: Optional[dict], key: str = "rps") -> Optional[float]:
    """``result[key]`` when the result was measured, else None."""
    if result and result.get("available") and key in result:
        return result[key]
    return None


def derive(results: dict) -> None:
    """Add ``ratio`` (first interpreter over second) and ``ceiling_share`` to rows."""
    names = results["interpreters"]
    bare = results["bare"]["results"]
    for row in results["paths"] + [results["bare"]]:
        rates = {name: rate(row["results"].get(name)) for name in names}
        row["ratio"] = ratio(rates[names[0]], rates[names[1]]) if names[1:] else None
        row["ceiling_share"] = {
            name: ratio(rates[name], rate(bare.get(name))) for name in names
        }


def _markdown(header: List[str], rows: List[List[str]], text_columns: int = 1) -> str:
    """A Markdown table padded to line up in a terminal too.

    The first ``text_columns`` columns are left-aligned, the numbers right-aligned.
    """
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]

    def line(cells):
        padded = [
            cell.ljust(width) if i < text_columns else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        "-" * (width + 1) + ("-" if i < text_columns else ":")
        for i, width in enumerate(widths)
    ]
    return "\n".join([line(header), "|" + "|".join(rule) + "|"] + list(map(line, rows)))


def _measured(result: Optional[dict]) -> List[str]:
    """Req/s (``*``: with errors), p50 and p99 cells."""
    if not result or not result.get("available"):
        return ["n/a", "", ""]
    latency = result["latency_ms"]
    flag = " *" if result["errors"]["total"] else ""
    return [
        f"{result['rps']:,.0f}{flag}",
        f"{latency['p50']:.2f}",
        f"{latency['p99']:.2f}",
    ]


def _shown(value: Optional[float], form: str) -> str:
    return "" if value is None else format(value, form)


def _missing(reasons: dict) -> str:
    """What could not be measured, and why, under the table."""
    lines = [f"- {name}: {reason}" for name, reason in reasons.items()]
    return "\n\nNot available in this run:\n" + "\n".join(lines) if lines else ""


def table(results: dict) -> str:
    """Req/s, p50, p99 (ms) per path per interpreter, their ratio, share of the ceiling.

    Then the paths that could not be measured, with the reason.
    """
    names: List[str] = results["interpreters"]
    with_bare = bool(results["bare"]["results"])
    header = ["path"]
    for name in names:
        header += [f"{name} req/s", "p50 ms", "p99 ms"]
    header += [f"{names[0]}/{names[1]}"] if len(names) >= 2 else []
    header += [f"{name} % of bare" for name in names] if with_bare else []
    rows, missing = [], {}
    for row in ([results["bare"]] if with_bare else []) + results["paths"]:
        measured = row["results"].values()
        if not any(result.get("available") for result in measured):
            reasons = sorted({result.get("reason", "") for result in measured})
            missing[row["label"]] = "; ".join(reasons)
            continue
        cells = [row["label"]]
        for name in names:
            cells += _measured(row["results"].get(name))
        cells += [_shown(row["ratio"], ".2f") + "x"] if len(names) >= 2 else []
        if with_bare:
            cells += [_shown(row["ceiling_share"][n], ".0%") for n in names]
        rows.append(cells)
    text = _markdown(header, rows)
    if any(cell.endswith(" *") for row in rows for cell in row):
        text += "\n\n\\* some responses were errors (counts in the JSON)"
    return text + _missing(missing)


def _goal(what: str, figure: Any, threshold: str, *scores, ok: bool = True) -> dict:
    """One target; each score is a figure over what is wanted (1 or more: holds).

    Without every score the run has no verdict (``holds`` None); ``ok``
    False (errors, events missing) fails a target whatever the scores.
    """
    score = min(scores) if scores and None not in scores else None
    holds = None if score is None else score >= 1 and ok
    return dict(
        target=what, figure=figure, threshold=threshold, holds=holds, score=score
    )


def _within(limit: float, value: Optional[float]) -> Optional[float]:
    """The score of ``value <= limit`` (None without a value)."""
    return None if value is None else limit / max(value, 1e-3)


def _compare(what: str, ours, theirs, wanted: float, percent: bool = False) -> dict:
    """The target ``ours / theirs >= wanted``."""
    threshold = f">= {wanted:.0%}" if percent else f">= {wanted:g}x"
    if not (ours and theirs):
        return _goal(what, "n/a (not measured)", threshold)
    value = ours / theirs
    shown = f"{value:.0%}" if percent else f"{value:.2f}x"
    figure = f"{shown} ({ours:,.0f} / {theirs:,.0f})"
    return _goal(what, figure, threshold, value / wanted)


def _unmeasured(figure: dict) -> str:
    """Why a figure module gave no result."""
    result = figure.get("result") or {}
    reason = figure.get("error") or result.get("reason")
    return f"n/a ({reason or 'not measured'})"


def targets(results: dict) -> List[dict]:
    """Every performance target with this run's figure and whether it holds.

    ``holds`` is None when the run has no figure for it; the figure says why.
    """
    versions = results.get("versions", {})
    pypy, cpython = (
        next((n for n, v in versions.items() if v.startswith(prefix)), None)
        for prefix in ("PyPy", "CPython")
    )
    rows = {row["name"]: row for row in results["paths"]}
    bare = rate(results["bare"]["results"].get(pypy))
    out = []
    for what, name, over, wanted in RATIOS:
        if name in rows:
            measured = rows[name]["results"]
            ours = rate(measured.get(pypy))
            theirs = rate(measured.get(cpython)) if over == "cpython" else bare
            what = what.format(label=rows[name]["label"])
            out.append(_compare(what, ours, theirs, wanted, over == "bare"))
    post = rows.get("notes-post", {}).get("results", {}).get(pypy)
    if post is not None and post.get("available"):
        p99 = post["latency_ms"]["p99"]
        # wrk counts statuses >= 400 as "status"; every kind is an error here.
        busy = sum(n for kind, n in post["errors"].items() if kind != "total")
        what = "POST /notes p99 on SQLite, PyPy, "
        what += f"{results['settings']['connections']} connections, no error"
        shown, wanted = f"{p99:.1f} ms, {busy} errors", f"<= {POST_P99_MS:g} ms"
        score = 0.0 if busy else _within(POST_P99_MS, p99)
        out.append(_goal(what, shown, wanted + ", 0 errors", score))
    out += _tails(results, pypy)
    figures = results.get("figures") or {}
    for name, goals in (
        ("peer", _peer),
        ("push", _push),
        ("rethinkdb", _rethinkdb),
        ("auth", _auth),
        ("collatz", _collatz),
    ):
        out += goals(figures[name]) if name in figures else []
    seed = (results.get("seed") or {}).get("figures", {})
    for what, name, key, unit, wanted in SEED_RATIOS:
        if name in rows:
            ours = rate(rows[name]["results"].get(pypy), unit)
            theirs = (seed.get(key) or {}).get(unit)
            out.append(_compare(what + " (seed measured apart)", ours, theirs, wanted))
    return out


def _tails(results: dict, pypy: Optional[str]) -> List[dict]:
    """Per path under PyPy: p99 <= 5x its p50 and <= 10x the bare app's p99."""
    bare = rate(results["bare"]["results"].get(pypy), "latency_ms") or {}
    wanted = f"<= {TAIL_OVER_P50:g}x p50, <= {TAIL_OVER_BARE:g}x bare p99"
    out = []
    for row in results["paths"]:
        measured = rate(row["results"].get(pypy), "latency_ms")
        what = f"PyPy, {row['label']}: p99 against p50 and the bare app's p99"
        if not (measured and bare.get("p99")):
            out.append(_goal(what, "n/a (not measured)", wanted))
            continue
        p50, p99, bare_p99 = measured["p50"], measured["p99"], bare["p99"]
        figure = f"{p99:.1f} ms ({p99 / p50:.1f}x p50, {p99 / bare_p99:.1f}x bare)"
        scores = (
            _within(TAIL_OVER_P50 * p50, p99),
            _within(TAIL_OVER_BARE * bare_p99, p99),
        )
        out.append(_goal(what, figure, wanted, *scores))
    return out


def _peer(figure: dict) -> List[dict]:
    measured, what = figure.get("result") or {}, "PyPy against the FastAPI peer"
    wanted = measured.get("target_ratio", 2.0)
    threshold = f">= {wanted:g}x, p99 no worse"
    if not measured.get("rows"):
        return [_goal(what, _unmeasured(figure), threshold)]
    out = []
    for row in measured["rows"]:
        times = row["ratio"] or 0.0
        ours, theirs = row["ours_p99_ms"], row["peer_p99_ms"]
        shown = f"{times:.2f}x ({row['ours_rps']:,} / {row['peer_rps']:,});"
        shown += f" p99 {ours:.1f} / {theirs:.1f} ms"
        scores = times / wanted, _within(theirs, ours)
        what_row, clean = f"{what}, {row['path']}", not row["errors"]
        out.append(_goal(what_row, shown, threshold, *scores, ok=clean))
    return out


def _push(figure: dict) -> List[dict]:
    under = (figure.get("result") or {}).get("results", {}).get("pypy", {})
    under, threshold = under.get("under_load"), f"<= {PUSH_P99_MS:g} ms"
    out = []
    for channel, label in (("sse", "SSE"), ("sub", "ZeroMQ SUB")):
        what = f"POST -> {label} p99 at {PUSH_RATE} writes/s, embedded store, PyPy"
        if under is None:
            out.append(_goal(what, _unmeasured(figure), threshold))
            continue
        missing, p99 = under[channel]["missing"], under[channel]["p99_ms"]
        shown = f"{p99} ms (asked {under['asked_rate']:g}/s, achieved "
        shown += f"{under['achieved_rate']:g}/s; {missing} missing)"
        goal = _goal(what, shown, threshold, _within(PUSH_P99_MS, p99), ok=not missing)
        # Below the target's rate the figure is shown without a verdict.
        out.append(goal if under["asked_rate"] >= PUSH_RATE else dict(goal, holds=None))
    return out


def _rethinkdb(figure: dict) -> List[dict]:
    """RethinkDB against SQLite per path, and push at 500 writes/s, under PyPy."""
    pypy = (figure.get("result") or {}).get("results", {}).get("pypy") or {}
    out = []
    for name, (label, wanted) in RETHINKDB_OVER_SQLITE.items():
        what = f"RethinkDB {label} req/s vs SQLite's, PyPy, one run"
        if f"sqlite_{name}" not in pypy:
            out.append(_goal(what, _unmeasured(figure), f">= {wanted:.0%}"))
            continue
        ours, theirs = pypy[name]["rps"], pypy[f"sqlite_{name}"]["rps"]
        out.append(_compare(what, ours, theirs, wanted, percent=True))
    what = f"RethinkDB POST -> SSE p99 at {PUSH_RATE} writes/s, with POST p99, PyPy"
    threshold = f"<= {PUSH_P99_MS:g} ms, POST <= {RETHINKDB_POST_P99_MS:g} ms"
    at_rate = [p for p in pypy.get("push", []) if p["asked_rate"] >= PUSH_RATE]
    if not at_rate:
        return out + [_goal(what, _unmeasured(figure), threshold)]
    push = at_rate[0]
    p99, post_p99 = push["p99_ms"], push["post_latency_ms"].get("p(99)")
    shown = f"{p99} ms, POST {post_p99} ms (achieved {push['achieved_rate']:g}/s; "
    shown += f"{push['missing']} missing)"
    scores = _within(PUSH_P99_MS, p99), _within(RETHINKDB_POST_P99_MS, post_p99)
    return out + [_goal(what, shown, threshold, *scores, ok=not push["missing"])]


def _auth(figure: dict) -> List[dict]:
    what = "GET /notes/{id} with a key against without one: the cost"
    measured = figure.get("result")
    if measured is None:
        return [_goal(what, _unmeasured(figure), "< 5%")]
    rates = measured["median_rps"]
    shown = f"{measured['cost']:.1%} ({rates['with_key']:,.0f} against "
    shown += f"{rates['without']:,.0f} requests/s, {measured['interpreter']})"
    goal = _goal(what, shown, f"< {measured['target_cost']:.0%}")
    return [dict(goal, holds=measured["met"])]


def _collatz(figure: dict) -> List[dict]:
    what = "Collatz, the longest chain up to n, PyPy against C (gcc -O2)"
    threshold = f"<= {COLLATZ_OVER_C:g}x"
    measured = figure.get("result") or {}
    times = {k: v.get("seconds") for k, v in measured.get("interpreters", {}).items()}
    if not (times.get("pypy") and times.get("c")):
        return [_goal(what, _unmeasured(figure), threshold)]
    over = times["pypy"] / times["c"]
    shown = (
        f"{over:.2f}x ({times['pypy']:.3f} / {times['c']:.3f} s, n = {measured['n']:,})"
    )
    return [_goal(what, shown, threshold, _within(COLLATZ_OVER_C, over))]


def targets_table(rows: List[dict]) -> str:
    """The targets as a Markdown table: target, figure, threshold, holds."""
    mark = {True: "yes", False: "**no**", None: "n/a"}
    body = [
        [row["target"], row["figure"] or "n/a", row["threshold"], mark[row["holds"]]]
        for row in rows
    ]
    header = ["target", "this run", "wanted", "holds"]
    return _markdown(header, body, text_columns=4) if rows else ""


def _per_path(results: dict, key: str, describe, heading: str) -> str:
    """One column per interpreter: ``describe`` of each path's ``key``."""
    names: List[str] = results["interpreters"]
    rows = [
        [row["label"]]
        + [describe((row["results"].get(n) or {}).get(key)) for n in names]
        for row in [results["bare"]] + results["paths"]
    ]
    rows = [cells for cells in rows if any(cells[1:])]
    header = ["path"] + [f"{name} {heading}" for name in names]
    return _markdown(header, rows, 3) if rows else ""


def warmup_table(results: dict) -> str:
    """Each path's warm-up per interpreter, and whether its rate levelled off."""
    return _per_path(results, "warmup", describe_warmup, "warm-up")


def gc_table(results: dict) -> str:
    """Each path's garbage-collector pauses in its measured window, per interpreter."""
    return _per_path(results, "gc", describe_gc, "pauses (ms paused, longest ms)")


def worker_table(comparison: dict) -> str:
    """Worker classes x connection mode x path: req/s, p50, p99, server CPU."""
    rows = [
        [
            row["worker_class"]
            + (f" ({row['threads']} threads)" if row["threads"] > 1 else ""),
            row["connection"],
            row["label"],
            *_measured(row),
            _shown(row.get("cpu_ms_per_request"), ".3f"),
        ]
        for row in comparison.get("rows", [])
    ]
    header = ["worker class", "connection", "path", "req/s", "p50 ms", "p99 ms"]
    text = _markdown(header + ["server CPU ms/req"], rows, 3) if rows else ""
    return (text + _missing(comparison.get("not_available", {}))).strip()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def figures_table(figures: dict) -> str:
    """Per figure module: its ``rows`` as a table when it has them, else its JSON."""
    parts = []
    for name, figure in figures.items():
        result = figure.get("result")
        if "error" in figure:
            parts.append(f"- {name}: failed ({figure['error']})")
        elif isinstance(result, dict) and result.get("rows"):
            header = list(dict.fromkeys(key for row in result["rows"] for key in row))
            body = [[_cell(row.get(key)) for key in header] for row in result["rows"]]
            parts.append(f"{name}:\n\n{_markdown(header, body)}\n")
        else:
            parts.append(f"- {name}: {json.dumps(result, sort_keys=True)}")
    return "\n".join(parts)


def markdown(results: dict) -> str:
    """The whole report: settings line, targets, paths, warm-ups, classes, figures."""
    settings, machine = results["settings"], results["machine"]
    versions = ", ".join(f"{k}: {v}" for k, v in results["versions"].items())
    workers = ", ".join(f"{k} {v}" for k, v in settings["workers"].items())
    parts = [
        f"{machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB; "
        f"{versions}; gunicorn workers: {workers} "
        f"({settings['worker_class']}, {settings['threads']} threads); wrk "
        f"{settings['connections']} connections; warm-up until the rate levels "
        f"off (at most {settings['warmup']:g} s per path, +"
        f"{settings['server_warmup']:g} s before a server's first path), "
        f"then {settings['duration']:g} s measured per path"
        + (" (QUICK run: noisy)" if settings["quick"] else "")
    ]
    sections = [
        ("Targets:", targets_table(targets(results))),
        ("", table(results)),
        ("Warm-up per path (slices until the rate levels off):", warmup_table(results)),
        ("Garbage-collector pauses while each path was measured:", gc_table(results)),
    ]
    if "worker_classes" in results:
        classes = worker_table(results["worker_classes"])
        sections.append(("Gunicorn worker classes under PyPy:", classes))
    if "figures" in results:
        sections.append(("Figures:", figures_table(results["figures"])))
    parts += [f"{title}\n\n{text}".strip() for title, text in sections if text]
    return "\n\n".join(parts) + "\n"
