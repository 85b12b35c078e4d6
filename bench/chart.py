"""``python -m bench.chart RESULTS.json OUT.png``: a run's results as a bar chart.

Run with CPython: matplotlib is not installed under PyPy.
"""

import json
import sys
from pathlib import Path

import matplotlib

from bench import report

matplotlib.use("Agg")  # no display: render straight to the file

import matplotlib.pyplot as plt  # noqa: E402

#: Grey: a target without a verdict (say, push measured below 500 writes/s).
VERDICT = {True: "tab:green", False: "tab:red", None: "tab:gray"}


def _bars(axis, labels, series, xlabel, texts=None) -> None:
    """Horizontal bars: ``series`` is ``[(legend, values, colour)]``, side by side."""
    height = 0.8 / len(series)
    for index, (legend, values, colour) in enumerate(series):
        rows = [n + index * height for n in range(len(labels))]
        bars = axis.barh(rows, values, height=height, label=legend, color=colour)
        shown = texts or [f"{v:,.0f}" if v else "n/a" for v in values]
        axis.bar_label(bars, labels=shown, fontsize=7, padding=2)
    axis.set_yticks([n + height * (len(series) - 1) / 2 for n in range(len(labels))])
    axis.set_yticklabels(labels, fontsize=7)
    axis.invert_yaxis()
    axis.margins(x=0.15)  # room for the value labels
    axis.set_xlabel(xlabel)
    axis.grid(axis="x", alpha=0.3)


def draw(results: dict, out: Path) -> None:
    """Req/s per path per interpreter; the targets; the worker classes if measured."""
    names, versions = results["interpreters"], results.get("versions", {})
    rows = [
        row
        for row in [results["bare"]] + results["paths"]
        if any(r.get("available") for r in row["results"].values())
    ]
    goals = [goal for goal in report.targets(results) if goal["score"] is not None]
    classes = (results.get("worker_classes") or {}).get("rows", [])
    panels = [len(rows) * len(names) + 1]
    panels += [0.6 * len(goals) + 1] if goals else []
    panels += [0.6 * len(classes) + 1] if classes else []
    figure, grid = plt.subplots(
        len(panels),
        1,
        figsize=(13, 0.45 * sum(panels) + 2),
        squeeze=False,
        gridspec_kw={"height_ratios": panels},
    )
    axes = iter(grid[:, 0])
    axis = next(axes)
    series = []
    for name in names:
        values = [report.rate(r["results"].get(name)) or 0 for r in rows]
        series.append((versions.get(name, name), values, None))
    _bars(axis, [row["label"] for row in rows], series, "requests/second")
    axis.set_title(_title(results))
    axis.legend(fontsize=8, loc="lower right")
    if goals:
        axis = next(axes)
        scores = [goal["score"] for goal in goals]
        colours = [VERDICT[goal["holds"]] for goal in goals]
        labels = [f"{goal['target']} ({goal['threshold']})" for goal in goals]
        texts = [goal["figure"].split(" (")[0] for goal in goals]
        xlabel = "targets: figure / wanted (1 or more: holds)"
        _bars(axis, labels, [(None, scores, colours)], xlabel, texts)
        axis.axvline(1.0, color="black", linewidth=1)
    if classes:
        labels = [
            f"{r['worker_class']} / {r['connection']} / {r['label']}" for r in classes
        ]
        series = [(None, [report.rate(r) or 0 for r in classes], "tab:green")]
        xlabel = "requests/second, gunicorn worker classes under PyPy"
        _bars(next(axes), labels, series, xlabel)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)


def _title(results: dict) -> str:
    machine, settings = results.get("machine", {}), results.get("settings", {})
    workers = "/".join(str(n) for n in settings.get("workers", {}).values())
    return (
        f"{machine.get('cores')} cores, {workers} gunicorn workers, "
        f"{settings.get('connections')} connections, "
        f"{settings.get('duration')} s per path"
        + (" (QUICK: noisy)" if settings.get("quick") else "")
    )


def draw_file(results: str, out: str) -> None:
    """The chart of a results file."""
    draw(json.loads(Path(results).read_text()), Path(out))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    draw_file(*sys.argv[1:])
