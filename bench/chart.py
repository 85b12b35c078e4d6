"""Draw a run's results as a PNG bar chart (CPython with matplotlib).

``python -m bench.chart RESULTS.json OUT.png``; bench/run.py calls it with the
CPython virtualenv, since matplotlib is not installed under PyPy.
"""

import json
import sys
from pathlib import Path

import matplotlib

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
    panels = 2 if class_rows else 1
    height = max(3.0, 0.5 * len(rows) * len(names)) + (0.3 * len(class_rows) + 1)
    ratios = [len(rows) * len(names) + 1, 0.6 * len(class_rows) + 1][:panels]
    figure, axes = plt.subplots(
        panels,
        1,
        figsize=(10, height),
        squeeze=False,
        gridspec_kw={"height_ratios": ratios},
    )

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
        classes_axis = axes[1][0]
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


def _title(results: dict) -> str:
    machine = results.get("machine", {})
    settings = results.get("settings", {})
    return (
        f"{machine.get('cores')} cores, {settings.get('workers')} gunicorn workers, "
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
