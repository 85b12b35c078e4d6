"""Gunicorn worker classes under PyPy, with and without keep-alive.

The sync worker closes every connection; "close" sends ``Connection: close``
to every class, as many load balancers and short-lived clients do.
"""

from pathlib import Path
from typing import Sequence

from bench import common
from bench import paths

#: name -> environment; gthread's thread count is what the default would use.
CLASSES = {
    "sync": {"WORKER_CLASS": "sync", "THREADS": "1"},
    "gthread": {"WORKER_CLASS": "gthread", "THREADS": "4"},
    "gevent": {"WORKER_CLASS": "gevent", "THREADS": "1"},
}
KEEPALIVE = {"keep-alive": {}, "close": {"Connection": "close"}}
TARGETS = (paths.BY_NAME["health"], paths.BY_NAME["notes-get"])


def compare(
    python: str,
    workdir: Path,
    measurer: common.Measurer,
    *,
    workers: int,
    database: Path,
    classes: Sequence[str] = tuple(CLASSES),
    then=None,
) -> dict:
    """Every class x connection mode x target, as rows.

    ``then(name, stack)`` runs on each class's stack after its rows; what it
    returns is kept under ``after``.
    """
    rows, missing, after = [], {}, {}
    for name in classes:
        env = dict(CLASSES[name], WORKERS=str(workers))
        stack = common.Stack(
            python, workdir / f"class-{name}", env=env, database=database
        )
        reason = common.import_error(python, "gevent") if name == "gevent" else None
        if reason:
            reason = f"gevent does not import ({reason}); make bench installs it"
        else:
            try:
                stack.start()
            except common.StartError as ex:
                reason = f"gunicorn did not start: {str(ex)[-500:]}"
        if reason:
            missing[name] = common.unavailable(reason, name)["reason"]
            continue
        try:
            for target in TARGETS:
                path = target.prepare(paths.Api(stack.url))
                for mode, headers in KEEPALIVE.items():
                    result = measurer.measure(
                        stack.url,
                        target,
                        path,
                        headers=headers,
                        label=f"{name}/{mode}",
                        stack=stack,
                        workers=workers,
                    )
                    rows.append(
                        {
                            "worker_class": name,
                            "threads": int(CLASSES[name]["THREADS"]),
                            "connection": mode,
                            "target": target.name,
                            "label": target.label,
                            **result,
                        }
                    )
            if then is not None:
                after[name] = then(name, stack)
        finally:
            stack.stop()
    return {
        "rows": rows,
        "not_available": missing,
        **({"after": after} if then else {}),
    }
