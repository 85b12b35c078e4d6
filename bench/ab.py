"""Two checkouts of the project served at once, measured in alternated windows.

The machine's speed can drift by tens of percent within minutes, more than
many changes are worth, and runs of ``bench.run`` one after the other then
compare the drift. Here both versions are up and warm together, and each
round measures one and then the other (the order alternating), so a drift
falls on both alike. Per version and path: the medians over the rounds of
requests/s, CPU per request (every process of the stack) and p99.

    .venv/pypy3/bin/python -m bench.ab OLD_CHECKOUT [NEW] --only notes-get,redirect

Nothing else should run on the machine meanwhile (docs/performance/index.md).
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Dict
from typing import List

from bench import common
from bench import paths


def measure(stack: common.Stack, target: paths.Target, path: str, seconds: float):
    """(requests/s, CPU ms per request, p99 ms) of one wrk window."""
    before = stack.cpu_seconds()
    result = common.wrk(
        stack.url, path, seconds=seconds, method=target.method, body=target.body
    )
    used = stack.cpu_seconds() - before
    return result["rps"], 1000 * used / result["requests"], result["latency_ms"]["p99"]


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="the checkout to compare against")
    parser.add_argument("new", nargs="?", default=str(common.HERE.parent))
    parser.add_argument("--only", default="notes-get", help="comma-separated paths")
    parser.add_argument("--python", default=common.interpreter("pypy3"))
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=25, help="seconds per path")
    args = parser.parse_args(argv)
    targets = paths.by_name(args.only.split(","))
    if any(target.bodies or target.collatz for target in targets):
        parser.error("only paths without generated bodies or collatz workers")
    versions = {"old": args.old, "new": args.new}
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as folder:
        # One data set, the salaries included, copied into both versions.
        database = Path(folder) / "dataset.db"
        common.prepare_database(args.python, database, salaries=True)
        stacks: Dict[str, common.Stack] = {}
        try:
            for name, checkout in versions.items():
                stacks[name] = common.Stack(
                    args.python,
                    Path(folder) / name,
                    env={"PYTHONPATH": str(Path(checkout).resolve())},
                    database=database,
                ).start()
            for target in targets:
                where = {
                    name: target.prepare(paths.Api(stack.url))
                    for name, stack in stacks.items()
                }
                for name, stack in stacks.items():
                    measure(stack, target, where[name], args.warmup)
                rounds: Dict[str, list] = {name: [] for name in stacks}
                for n in range(args.rounds):
                    for name in sorted(stacks, reverse=n % 2 == 1):
                        rounds[name].append(
                            measure(stacks[name], target, where[name], args.seconds)
                        )
                for name, rows in rounds.items():
                    rps, cpu, p99 = (statistics.median(column) for column in zip(*rows))
                    print(
                        f"{target.label}, {name} ({versions[name]}): {rps:,.0f} req/s,"
                        f" {cpu:.4f} ms CPU/request, p99 {p99:.1f} ms"
                        f" (medians of {len(rows)} windows of {args.seconds:g} s)",
                        flush=True,
                    )
        finally:
            for stack in stacks.values():
                stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
