"""Derived figures (PyPy/CPython ratio, share of the ceiling) and the printed table."""

import json
from pathlib import Path
from typing import List
from typing import Optional


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

    A Markdown table (it goes into the README as it is), then the paths that
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


def figures_table(figures: dict) -> str:
    """One line per figure module: its result, or why there is none."""
    lines = []
    for name, figure in figures.items():
        if not figure.get("available"):
            lines.append(f"- {name}: not available ({figure.get('reason')})")
        elif "error" in figure:
            lines.append(f"- {name}: failed ({figure['error']})")
        else:
            lines.append(f"- {name}: {json.dumps(figure['result'], sort_keys=True)}")
    return "\n".join(lines)


def markdown(results: dict) -> str:
    """The whole report: settings line, paths table, worker classes, figures."""
    settings = results["settings"]
    machine = results["machine"]
    versions = ", ".join(f"{k}: {v}" for k, v in results["versions"].items())
    parts = [
        f"{machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB; "
        f"{versions}; gunicorn {settings['workers']} workers "
        f"({settings['worker_class']}, {settings['threads']} threads); wrk "
        f"{settings['connections']} connections, {settings['warmup']:g} s warm-up "
        f"(+{settings.get('server_warmup', 0):g} s before a server's first path) + "
        f"{settings['duration']:g} s measured per path"
        + (" (QUICK run: noisy)" if settings["quick"] else ""),
        table(results),
    ]
    if "worker_classes" in results:
        parts.append(
            "Gunicorn worker classes under PyPy:\n\n"
            + worker_table(results["worker_classes"])
        )
    if "figures" in results:
        parts.append("Figures:\n\n" + figures_table(results["figures"]))
    return "\n\n".join(parts) + "\n"


def write_json(results: dict, path: Path) -> None:
    """Write ``results`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    temporary.replace(path)
