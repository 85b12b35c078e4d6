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


def _rps(result) -> float:
    return result["rps"] if result and result.get("available") else 0.0


def draw(results: dict, out: Path) -> None:
    """Req/s per path per interpreter; worker classes in a second panel if measured."""
    names = results["interpreters"]
    rows = [
        row
        for row in [results["bare"]] + results["paths"]
        if any(r.get("available") for r in row["results"].values())
    ]
    comparison = results.get("worker_classes") or {}
    class_rows = comparison.get("rows", [])
    goals = [goal for goal in report.targets(results) if goal["score"] is not None]
    sizes = [len(rows) * len(names) + 1]
    if goals:
        sizes.append(0.6 * len(goals) + 1)
    if class_rows:
        sizes.append(0.6 * len(class_rows) + 1)
    height = 0.45 * sum(sizes) + 2
    figure, axes = plt.subplots(
        len(sizes),
        1,
        figsize=(13, height),
        squeeze=False,
        gridspec_kw={"height_ratios": sizes},
    )
    panel = 1
    if goals:
        _targets(axes[panel][0], goals)
        panel += 1

    paths_axis = axes[0][0]
    bar = 0.8 / max(len(names), 1)
    for index, name in enumerate(names):
        positions = [row_number + index * bar for row_number in range(len(rows))]
        values = [_rps(row["results"].get(name)) for row in rows]
        label = results.get("versions", {}).get(name, name)
        bars = paths_axis.barh(positions, values, height=bar, label=label)
        paths_axis.bar_label(
            bars,
            labels=[f"{v:,.0f}" if v else "n/a" for v in values],
            fontsize=7,
            padding=2,
        )
    paths_axis.set_yticks([n + bar * (len(names) - 1) / 2 for n in range(len(rows))])
    paths_axis.set_yticklabels([row["label"] for row in rows], fontsize=8)
    paths_axis.invert_yaxis()
    paths_axis.set_xlabel("requests/second (higher is better)")
    paths_axis.set_title(_title(results))
    paths_axis.legend(fontsize=8, loc="lower right")
    paths_axis.margins(x=0.12)  # room for the value labels
    paths_axis.grid(axis="x", alpha=0.3)

    if class_rows:
        classes_axis = axes[panel][0]
        labels = [
            f"{r['worker_class']} / {r['connection']} / {r['label']}"
            for r in class_rows
        ]
        values = [_rps(r) for r in class_rows]
        bars = classes_axis.barh(range(len(class_rows)), values, color="tab:green")
        classes_axis.bar_label(
            bars, labels=[f"{v:,.0f}" for v in values], fontsize=7, padding=2
        )
        classes_axis.set_yticks(range(len(class_rows)))
        classes_axis.set_yticklabels(labels, fontsize=7)
        classes_axis.invert_yaxis()
        classes_axis.margins(x=0.12)
        classes_axis.set_xlabel("requests/second, gunicorn worker classes under PyPy")
        classes_axis.grid(axis="x", alpha=0.3)

    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)


def _targets(axis, goals) -> None:
    """Each target's figure over what it wants: 1 or more holds (green; red: not)."""
    scores = [goal["score"] for goal in goals]
    # Grey: a figure without a verdict (say, push measured below 500 writes/s).
    palette = {True: "tab:green", False: "tab:red", None: "tab:gray"}
    colours = [palette[goal["holds"]] for goal in goals]
    bars = axis.barh(range(len(goals)), scores, color=colours)
    axis.bar_label(
        bars,
        labels=[f"{goal['figure'].split(' (')[0]}" for goal in goals],
        fontsize=7,
        padding=2,
    )
    axis.axvline(1.0, color="black", linewidth=1)
    axis.set_yticks(range(len(goals)))
    axis.set_yticklabels(
        [f"{goal['target']} ({goal['threshold']})" for goal in goals], fontsize=7
    )
    axis.invert_yaxis()
    axis.margins(x=0.15)
    axis.set_xlabel("targets: figure / wanted (1 or more: holds)")
    axis.grid(axis="x", alpha=0.3)


def _title(results: dict) -> str:
    machine = results.get("machine", {})
    settings = results.get("settings", {})
    workers = settings.get("workers")
    if isinstance(workers, dict):
        workers = "/".join(str(n) for n in workers.values())
    return (
        f"{machine.get('cores')} cores, {workers} gunicorn workers, "
        f"{settings.get('connections')} connections, "
        f"{settings.get('duration')} s per path"
        + (" (QUICK: noisy)" if settings.get("quick") else "")
    )


def main(argv=None) -> int:
    """``python -m bench.chart RESULTS.json OUT.png``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    draw(json.loads(Path(argv[0]).read_text()), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
