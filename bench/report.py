"""Derived figures (PyPy/CPython ratio, share of the ceiling), targets, tables."""

import json
from typing import Any
from typing import Dict
from typing import List
from typing import Optional

#: The performance targets: PyPy/CPython on every database path ...
DATABASE_PATHS = tuple(
    "notes-get notes-list notes-post notes-patch redirect links-create department "
    "employees primes".split()
)
PYPY_OVER_CPYTHON = 1.5
#: ... share of the bare app's req/s under PyPy ...
BARE_SHARES = {"notes-get": 0.50, "redirect": 0.40, "notes-post": 0.25}
#: ... POST /notes p99 at the run's connections, no 503 ...
POST_P99_MS = 20.0
#: ... push latency at this write rate ...
PUSH_RATE = 500
PUSH_P99_MS = 10.0
#: ... and against the seed's own apps (figures kept in bench/results/seed.json).
SEED_TARGETS = (
    ("redirect", "redirect", 2.0, "rps", "GET /{code} req/s vs Pyster's"),
    (
        "dept-seed",
        "department",
        5.0,
        "rps",
        "one department (GET /dept/TREASURER) req/s vs Salary-API's",
    ),
    (
        "export",
        "export",
        2.0,
        "rows_per_s",
        "POLICE export rows/s vs Salary-API's /dept/POLICE",
    ),
)


def ratio(numerator: Optional[dict], denominator: Optional[dict]) -> Optional[float]:
    """``numerator.rps / denominator.rps`` when both were measured, else None."""
    if not (numerator and denominator):
        return None
    if not (numerator.get("available") and denominator.get("available")):
        return None
    if not denominator["rps"]:
        return None
    return numerator["rps"] / denominator["rps"]


def derive(results: dict) -> None:
    """Add ``ratio`` and ``ceiling_share`` to every row of ``results["paths"]``."""
    names = results["interpreters"]
    first, second = (names[0], names[1]) if len(names) >= 2 else (None, None)
    for row in results["paths"] + [results["bare"]]:
        measured = row["results"]
        row["ratio"] = (
            ratio(measured.get(first), measured.get(second)) if first else None
        )
        row["ceiling_share"] = {
            name: ratio(measured.get(name), results["bare"]["results"].get(name))
            for name in names
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

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ("-" if i < text_columns else ":")
            for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(header), rule] + [line(row) for row in rows])


def _measured(result: Optional[dict]) -> List[str]:
    if not result or not result.get("available"):
        return ["n/a", "", ""]
    latency = result["latency_ms"]
    flag = " *" if result["errors"]["total"] else ""
    return [
        f"{result['rps']:,.0f}{flag}",
        f"{latency['p50']:.2f}",
        f"{latency['p99']:.2f}",
    ]


def _cpu(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.3f}"


def _times(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.2f}x"


def _percent(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.0%}"


def table(results: dict) -> str:
    """Req/s, p50, p99 (ms) per path per interpreter, their ratio, share of the ceiling.

    A Markdown table (the docs publish it as it is), then the paths that
    could not be measured, with the reason.
    """
    names: List[str] = results["interpreters"]
    with_bare = bool(results["bare"]["results"])
    header = ["path"]
    for name in names:
        header += [f"{name} req/s", "p50 ms", "p99 ms"]
    if len(names) >= 2:
        header.append(f"{names[0]}/{names[1]}")
    if with_bare:
        header += [f"{name} % of bare" for name in names]
    rows, missing = [], []
    for row in ([results["bare"]] if with_bare else []) + results["paths"]:
        measured = row["results"]
        if not any(result.get("available") for result in measured.values()):
            reasons = sorted({result.get("reason", "") for result in measured.values()})
            missing.append(f"- {row['label']}: {'; '.join(reasons)}")
            continue
        cells = [row["label"]]
        for name in names:
            cells += _measured(measured.get(name))
        if len(names) >= 2:
            cells.append(_times(row["ratio"]))
        if with_bare:
            cells += [_percent(row["ceiling_share"][name]) for name in names]
        rows.append(cells)
    text = _markdown(header, rows)
    errors = any(
        result.get("available") and result["errors"]["total"]
        for row in [results["bare"]] + results["paths"]
        for result in row["results"].values()
    )
    if errors:
        text += "\n\n\\* some responses were errors (counts in the JSON)"
    if missing:
        text += "\n\nNot available in this run:\n" + "\n".join(missing)
    return text


def _named(results: dict, prefix: str) -> Optional[str]:
    """The run's interpreter whose version starts with ``prefix`` (PyPy, CPython)."""
    versions = results.get("versions", {})
    return next((n for n, v in versions.items() if v.startswith(prefix)), None)


def _row_results(results: dict, name: str) -> Dict[str, dict]:
    for row in results["paths"]:
        if row["name"] == name:
            return row["results"]
    return {}


def _target(
    what: str,
    figure: Any,
    threshold: str,
    holds: Optional[bool],
    score: Optional[float] = None,
) -> dict:
    """One target; ``score`` is the figure over what is wanted (1 or more: holds)."""
    return {
        "target": what,
        "figure": figure,
        "threshold": threshold,
        "holds": holds,
        "score": score,
    }


def _rate(result: Optional[dict], key: str = "rps") -> Optional[float]:
    if result and result.get("available") and key in result:
        return result[key]
    return None


def targets(results: dict) -> List[dict]:
    """Every performance target with this run's figure and whether it holds.

    ``holds`` is None when the run has no figure for it (not measured, not
    available); the figure then says why.
    """
    pypy, cpython = _named(results, "PyPy"), _named(results, "CPython")
    out = []
    labels = {row["name"]: row["label"] for row in results["paths"]}

    def compare(what, ours, theirs, wanted, shown, threshold):
        value = ours / theirs if ours and theirs else None
        figure = (
            None if value is None else f"{shown(value)} ({ours:,.0f} / {theirs:,.0f})"
        )
        holds = None if value is None else value >= wanted
        score = None if value is None else value / wanted
        out.append(_target(what, figure, threshold, holds, score))

    for name in DATABASE_PATHS:
        if name in labels:
            measured = _row_results(results, name)
            compare(
                f"PyPy/CPython, {labels[name]}",
                _rate(measured.get(pypy)),
                _rate(measured.get(cpython)),
                PYPY_OVER_CPYTHON,
                lambda value: f"{value:.2f}x",
                f">= {PYPY_OVER_CPYTHON}x",
            )
    bare = _rate(results["bare"]["results"].get(pypy))
    for name, share in BARE_SHARES.items():
        if name in labels:
            compare(
                f"PyPy, {labels[name]} vs the bare app",
                _rate(_row_results(results, name).get(pypy)),
                bare,
                share,
                lambda value: f"{value:.0%}",
                f">= {share:.0%}",
            )
    post = (
        _row_results(results, "notes-post").get(pypy)
        if "notes-post" in labels
        else None
    )
    if post is not None:
        if post.get("available"):
            p99 = post["latency_ms"]["p99"]
            busy = sum(
                n for kind, n in post["errors"].items() if kind != "total"
            )  # wrk counts statuses >= 400 as "status"
            out.append(
                _target(
                    "POST /notes p99 on SQLite, PyPy, "
                    f"{results['settings']['connections']} connections, no error",
                    f"{p99:.1f} ms, {busy} errors",
                    f"<= {POST_P99_MS:g} ms, 0 errors",
                    p99 <= POST_P99_MS and busy == 0,
                    POST_P99_MS / max(p99, 1e-3) if busy == 0 else 0.0,
                )
            )
    out += _peer_targets(results)
    out += _push_targets(results)
    out += _auth_targets(results)
    out += _seed_targets(results, pypy)
    return out


def _auth_targets(results: dict) -> List[dict]:
    figure = (results.get("figures") or {}).get("auth")
    if figure is None:
        return []
    what = "GET /notes/{id} with a key against without one: the cost"
    measured = figure.get("result")
    if measured is None:
        reason = figure.get("reason") or figure.get("error") or "not measured"
        return [_target(what, f"n/a ({reason})", "< 5%", None)]
    cost = measured["cost"]
    rates = measured["median_rps"]
    return [
        _target(
            what,
            f"{cost:.1%} ({rates['with_key']:,.0f} against {rates['without']:,.0f} "
            f"requests/s, {measured['interpreter']})",
            f"< {measured['target_cost']:.0%}",
            measured["met"],
        )
    ]


def _push_targets(results: dict) -> List[dict]:
    figure = (results.get("figures") or {}).get("push")
    if figure is None:
        return []
    under = (figure.get("result") or {}).get("results", {}).get("pypy", {})
    under = under.get("under_load")
    out = []
    for channel, label in (("sse", "SSE"), ("sub", "ZeroMQ SUB")):
        what = f"POST -> {label} p99 at {PUSH_RATE} writes/s, embedded store, PyPy"
        if under is None:
            reason = figure.get("reason") or figure.get("error") or "not measured"
            out.append(_target(what, f"n/a ({reason})", f"<= {PUSH_P99_MS:g} ms", None))
            continue
        measured, p99 = under[channel], under[channel]["p99_ms"]
        out.append(
            _target(
                what,
                f"{p99} ms (asked {under['asked_rate']:g}/s, achieved "
                f"{under['achieved_rate']:g}/s; {measured['missing']} missing)",
                f"<= {PUSH_P99_MS:g} ms",
                None
                if p99 is None or under["asked_rate"] < PUSH_RATE
                else p99 <= PUSH_P99_MS and measured["missing"] == 0,
                None if p99 is None else PUSH_P99_MS / max(p99, 1e-3),
            )
        )
    return out


def _peer_targets(results: dict) -> List[dict]:
    figure = (results.get("figures") or {}).get("peer")
    if figure is None:
        return []
    measured = figure.get("result") or {}
    if not measured.get("rows"):
        reason = figure.get("error") or measured.get("reason") or "not measured"
        what = "PyPy against the FastAPI peer"
        return [_target(what, f"n/a ({reason})", ">= 2x, p99 no worse", None)]
    out = []
    for row in measured["rows"]:
        wanted = measured["target_ratio"]
        value = row["ratio"] or 0.0
        p99_ok = row["ours_p99_ms"] <= row["peer_p99_ms"]
        out.append(
            _target(
                f"PyPy against the FastAPI peer, {row['path']}",
                f"{value:.2f}x ({row['ours_rps']:,} / {row['peer_rps']:,}); p99 "
                f"{row['ours_p99_ms']:.1f} / {row['peer_p99_ms']:.1f} ms",
                f">= {wanted:g}x, p99 no worse",
                value >= wanted and p99_ok and not row["errors"],
                min(value / wanted, row["peer_p99_ms"] / max(row["ours_p99_ms"], 1e-3)),
            )
        )
    return out


def _seed_targets(results: dict, pypy: Optional[str]) -> List[dict]:
    seed = results.get("seed") or {}
    figures = seed.get("figures", {})
    out = []
    labels = {row["name"] for row in results["paths"]}
    for name, key, factor, unit, what in SEED_TARGETS:
        if name not in labels:
            continue
        ours = _rate(_row_results(results, name).get(pypy), unit)
        theirs = (figures.get(key) or {}).get(unit)
        if ours is None or not theirs:
            reason = "seed not measured" if not theirs else "not measured here"
            out.append(_target(what, f"n/a ({reason})", f">= {factor:g}x", None))
            continue
        value = ours / theirs
        out.append(
            _target(
                what + " (seed measured apart)",
                f"{value:.2f}x ({ours:,.0f} / {theirs:,.0f})",
                f">= {factor:g}x",
                value >= factor,
                value / factor,
            )
        )
    return out


def targets_table(rows: List[dict]) -> str:
    """The targets as a Markdown table: target, figure, threshold, holds."""
    if not rows:
        return ""
    mark = {True: "yes", False: "**no**", None: "n/a"}
    body = [
        [row["target"], row["figure"] or "n/a", row["threshold"], mark[row["holds"]]]
        for row in rows
    ]
    return _markdown(["target", "this run", "wanted", "holds"], body, text_columns=4)


def warmup_table(results: dict) -> str:
    """Each path's warm-up per interpreter, and whether its rate levelled off."""
    names: List[str] = results["interpreters"]
    rows = []
    for row in [results["bare"]] + results["paths"]:
        cells = [row["label"]]
        seen = False
        for name in names:
            warm = (row["results"].get(name) or {}).get("warmup")
            if not warm:
                cells.append("")
                continue
            seen = True
            cells.append(
                f"{warm['seconds']:.0f} s, {warm['requests_per_worker']:,}/worker"
                + ("" if warm["plateau"] else ", no plateau")
            )
        if seen:
            rows.append(cells)
    if not rows:
        return ""
    return _markdown(["path"] + [f"{name} warm-up" for name in names], rows, 3)


def worker_table(comparison: dict) -> str:
    """Worker classes x connection mode x path: req/s, p50, p99 (Markdown)."""
    header = [
        "worker class",
        "connection",
        "path",
        "req/s",
        "p50 ms",
        "p99 ms",
        "server CPU ms/req",
    ]
    rows = [
        [
            f"{row['worker_class']}"
            + (f" ({row['threads']} threads)" if row["threads"] > 1 else ""),
            row["connection"],
            row["label"],
        ]
        + _measured(row)
        + [_cpu(row.get("cpu_ms_per_request"))]
        for row in comparison.get("rows", [])
    ]
    text = _markdown(header, rows, text_columns=3) if rows else ""
    missing = comparison.get("not_available", {})
    if missing:
        text += "\n\nNot available in this run:\n" + "\n".join(
            f"- {name}: {reason}" for name, reason in missing.items()
        )
    return text.strip()


def _rows_table(rows: List[dict]) -> str:
    """A list of flat dicts (a figure's ``rows``) as a Markdown table."""
    header: List[str] = []
    for row in rows:
        header += [key for key in row if key not in header]
    body = [[_cell(row.get(key)) for key in header] for row in rows]
    return _markdown(header, body)


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
        if not figure.get("available"):
            parts.append(f"- {name}: not available ({figure.get('reason')})")
        elif "error" in figure:
            parts.append(f"- {name}: failed ({figure['error']})")
        elif isinstance(figure["result"], dict) and figure["result"].get("rows"):
            rows = figure["result"]["rows"]
            parts.append(f"{name}:\n\n{_rows_table(rows)}\n")
        else:
            parts.append(f"- {name}: {json.dumps(figure['result'], sort_keys=True)}")
    return "\n".join(parts)


def markdown(results: dict) -> str:
    """The whole report: settings line, paths table, worker classes, figures."""
    settings = results["settings"]
    machine = results["machine"]
    versions = ", ".join(f"{k}: {v}" for k, v in results["versions"].items())
    workers = settings["workers"]
    if isinstance(workers, dict):
        workers = ", ".join(f"{k} {v}" for k, v in workers.items())
    parts = [
        f"{machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB; "
        f"{versions}; gunicorn workers: {workers} "
        f"({settings['worker_class']}, {settings['threads']} threads); wrk "
        f"{settings['connections']} connections; warm-up until the rate levels "
        f"off (at most {settings['warmup']:g} s per path, +"
        f"{settings.get('server_warmup', 0):g} s before a server's first path), "
        f"then {settings['duration']:g} s measured per path"
        + (" (QUICK run: noisy)" if settings["quick"] else ""),
    ]
    goal = targets_table(targets(results))
    if goal:
        parts.append("Targets:\n\n" + goal)
    parts.append(table(results))
    warm = warmup_table(results)
    if warm:
        parts.append("Warm-up per path (slices until the rate levels off):\n\n" + warm)
    if "worker_classes" in results:
        parts.append(
            "Gunicorn worker classes under PyPy:\n\n"
            + worker_table(results["worker_classes"])
        )
    if "figures" in results:
        parts.append("Figures:\n\n" + figures_table(results["figures"]))
    return "\n\n".join(parts) + "\n"
