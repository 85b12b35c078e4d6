"""The figures other parts publish (primes batch, collatz vs C, push, RethinkDB,
bulk link creation, WebSocket fan-out).

Each lives in a module of its own, ``bench/<name>.py``, with ``run(quick) ->
dict``; the module starts whatever interpreters and processes it compares.
A module that is not in this checkout is reported as not available.
"""

import importlib
import time
import traceback

FIGURES = ("primes", "collatz", "push", "rethinkdb", "links_bulk", "ws", "auth")


def run_one(name: str, quick: bool) -> dict:
    """Import ``bench.<name>`` and call its ``run(quick)``; never raises."""
    module_name = f"bench.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as ex:
        if ex.name != module_name:
            return {
                "available": False,
                "reason": f"{module_name} does not import: {ex}",
            }
        return {"available": False, "reason": f"{module_name} is not in this checkout"}
    started = time.monotonic()
    try:
        value = module.run(quick)
    except Exception as ex:  # one broken figure must not lose the others
        traceback.print_exc()
        return {"available": True, "error": f"{type(ex).__name__}: {ex}"}
    return {
        "available": True,
        "seconds": round(time.monotonic() - started, 1),
        "result": value,
    }


def run_all(quick: bool, names=FIGURES) -> dict:
    """Every figure, by name, with a line printed per figure."""
    results = {}
    for name in names:
        print(f"  figure {name} ...", flush=True)
        results[name] = result = run_one(name, quick)
        if not result["available"]:
            print(f"    not available: {result['reason']}", flush=True)
        elif "error" in result:
            print(f"    failed: {result['error']}", flush=True)
        else:
            print(f"    {result['result']}", flush=True)
    return results
