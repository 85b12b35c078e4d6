"""Every module's unit test is at the path that mirrors it, or the module says why not.

``db/notes/sql.py`` is tested by ``tests/unit/db/notes/test_sql.py``. A module
whose tests are long may add files by aspect beside it,
``test_<module>_<aspect>.py`` (``tests/unit/resources/test_links_bulk.py``). A module
tested elsewhere (end to end, or through the module that uses it) is named in
TESTED_ELSEWHERE with the test file; one with no test at all, in UNTESTED.
"""

from pathlib import Path
from typing import Iterator

from tests.support.live import ROOT
from tests.support.tree import SOURCE_PACKAGES
from tests.support.tree import project_files

#: Files that are no module to test: package markers, ``python -m`` entry
#: points (a line that calls a tested ``main``), Alembic's migration scripts
#: (tests/unit/db/test_schema.py runs every one of them).
NOT_MODULES = ("__init__.py", "__main__.py")
NOT_MODULE_FOLDERS = ("db/migrations",)
UNIT = Path("tests/unit")

#: Modules tested by another file: that file, and what it does with the module.
TESTED_ELSEWHERE = {
    "api/app.py": ("tests/conftest.py", "make_client builds every test's app with it"),
    "api/backup.py": ("tests/unit/db/test_backup.py", "python -m api backup|restore"),
    "api/keys.py": ("tests/unit/db/test_keys.py", "python -m api keys"),
    "api/supervise.py": ("tests/e2e/test_serve.py", "python -m api supervise"),
    "api/wsgi.py": ("tests/support/live.py", "gunicorn loads api.wsgi:app from it"),
    "api/zmq_keys.py": ("tests/unit/gateways/test_curve.py", "python -m api zmq-keys"),
    "bench/bare.py": ("tests/e2e/test_bench.py", "the bare target of the smoke run"),
    "bench/push.py": ("tests/e2e/test_bench_push.py", "runs the push figure"),
    "bench/rethinkdb.py": ("tests/e2e/test_bench_rethinkdb.py", "runs the figure"),
    "bench/worker_classes.py": ("tests/e2e/test_server_reliability.py", "its clients"),
    "clients/generate.py": ("tests/e2e/test_generated_client.py", "builds the client"),
    "clients/postman.py": ("tests/unit/web/test_openapi.py", "the collection's tests"),
    "clients/python/cli.py": ("tests/e2e/test_client_cli.py", "runs the command"),
    "core/addresses.py": ("tests/unit/core/test_hosts.py", "the loopback names"),
    "core/metrics.py": ("tests/unit/resources/test_metrics.py", "the /metrics text"),
    "core/notes.py": ("tests/unit/workers/push/test_events.py", "changes as events"),
    "core/text.py": ("tests/unit/web/test_validation.py", "NUL and lone surrogates"),
    "core/version.py": ("tests/e2e/test_metrics.py", "the version in /metrics"),
    "db/errors.py": ("tests/unit/web/test_errors.py", "each error's status"),
    "db/link_tables.py": ("tests/unit/db/test_links.py", "the links store's tables"),
    "db/notes/rethink_log.py": ("tests/unit/db/notes/test_rethink.py", "the outboxes"),
    "db/primes.py": ("tests/unit/resources/test_primes.py", "all-or-nothing batches"),
    "db/rethink.py": ("tests/unit/db/notes/test_rethink.py", "URLs and connections"),
    "db/salaries/store.py": ("tests/unit/resources/test_salaries.py", "the queries"),
    "db/salaries/tables.py": ("tests/unit/resources/test_salaries.py", "the tables"),
    "db/sql.py": ("tests/unit/db/test_sqlite.py", "sessions and queries"),
    "db/stores.py": ("tests/conftest.py", "make_client opens every test's stores"),
    "gateways/collatz_protocol.py": (
        "tests/unit/workers/collatz/test_broker.py",
        "the broker's messages",
    ),
    "loadtest/locustfile.py": ("tests/e2e/test_loadtest.py", "a short Locust run"),
    "loadtest/run.py": ("tests/e2e/test_loadtest.py", "runs the load tests"),
    "web/conditional.py": ("tests/unit/resources/test_notes.py", "If-Match, ETags"),
    "web/metrics.py": ("tests/unit/resources/test_metrics.py", "counts by route"),
    "workers/push/filters.py": ("tests/unit/workers/push/test_ws.py", "client filters"),
    "workers/push/metrics.py": ("tests/unit/resources/test_metrics.py", "its /metrics"),
    "workers/push/pub.py": ("tests/e2e/test_push.py", "ZeroMQ subscribers"),
    "workers/push/subscribers.py": ("tests/e2e/test_push_webhooks.py", "deliveries"),
}
#: Modules no test runs, and why that is accepted.
UNTESTED = {
    name: "a figure of make bench: running it is the measurement"
    for name in (
        "bench/auth.py",
        "bench/chart.py",
        "bench/collatz.py",
        "bench/links_bulk.py",
        "bench/peer.py",
        "bench/peer_app.py",
        "bench/primes.py",
        "bench/ws.py",
    )
}
UNTESTED["bench/ab.py"] = "a comparison of two checkouts: running it is the measurement"


def modules(root: Path = ROOT, packages=SOURCE_PACKAGES) -> Iterator[str]:
    """The source modules below ``root``, as paths relative to it."""
    for package in packages:
        for path in project_files(root / package):
            name = path.relative_to(root).as_posix()
            if (
                path.suffix == ".py"
                and path.name not in NOT_MODULES
                and not name.startswith(NOT_MODULE_FOLDERS)
            ):
                yield name


def _stem(module: str) -> Path:
    """``db/notes/sql.py`` -> ``tests/unit/db/notes/test_sql``."""
    path = Path(module)
    return UNIT / path.parent / f"test_{path.stem}"


def mirrored_tests(module: str, root: Path = ROOT) -> list:
    """The unit test files of ``module``: the mirrored one and its aspects.

    An aspect file that mirrors a module of its own
    (``tests/unit/api/test_server_gevent.py`` beside ``api/server.py``) is
    that module's test, not an aspect.
    """
    stem = root / _stem(module)
    found = [stem.with_suffix(".py")] if stem.with_suffix(".py").is_file() else []
    for path in sorted(stem.parent.glob(f"{stem.name}_*.py")):
        source = Path(module).with_name(path.stem[len("test_") :] + ".py")
        if not (root / source).is_file():
            found.append(path)
    return found


def untested(root: Path = ROOT, packages=SOURCE_PACKAGES) -> list:
    """Modules without a unit test file that no list names."""
    return [
        module
        for module in modules(root, packages)
        if not mirrored_tests(module, root)
        and module not in TESTED_ELSEWHERE
        and module not in UNTESTED
    ]


def stray_tests(root: Path = ROOT, packages=SOURCE_PACKAGES) -> list:
    """Unit test files in a package folder that mirror no module there."""
    claimed = set()
    for module in modules(root, packages):
        claimed.update(mirrored_tests(module, root))
    stray = []
    for package in packages:
        for path in project_files(root / UNIT / package):
            if path.name.startswith("test_") and path.suffix == ".py":
                if path not in claimed:
                    stray.append(path.relative_to(root).as_posix())
    return stray


def test_every_module_has_a_test_at_its_mirrored_path_or_a_reason():
    assert untested() == []


def test_every_test_file_in_a_package_folder_mirrors_a_module():
    assert stray_tests() == []


def test_every_listed_module_exists_and_has_no_test_of_its_own():
    """An entry goes with its module, and once the module has a test of its own."""
    listed = set(TESTED_ELSEWHERE) | set(UNTESTED)
    assert listed - set(modules()) == set()
    assert [module for module in listed if mirrored_tests(module)] == []
    assert set(TESTED_ELSEWHERE) & set(UNTESTED) == set()


def test_the_tests_named_elsewhere_exist():
    missing = [
        f"{module}: {test}"
        for module, (test, _) in TESTED_ELSEWHERE.items()
        if not (ROOT / test).is_file()
    ]
    assert missing == []


def _tree(root: Path, modules=(), tests=()) -> Path:
    """Empty files: ``modules`` below ``root``, ``tests`` below its tests/unit."""
    for path in [root / m for m in modules] + [root / UNIT / t for t in tests]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return root


def test_a_new_module_without_a_test_is_caught(tmp_path):
    root = _tree(tmp_path, ["pkg/__init__.py", "pkg/__main__.py", "pkg/fresh.py"])
    assert untested(root, ["pkg"]) == ["pkg/fresh.py"]
    _tree(root, tests=["pkg/test_fresh.py"])
    assert untested(root, ["pkg"]) == []


def test_aspect_files_count_for_their_module_only(tmp_path):
    root = _tree(
        tmp_path,
        ["pkg/thing.py", "pkg/thing_more.py", "pkg/links.py"],
        ["pkg/test_thing_more.py", "pkg/test_links_bulk.py", "pkg/test_gone.py"],
    )
    assert untested(root, ["pkg"]) == ["pkg/thing.py"]
    assert stray_tests(root, ["pkg"]) == [(UNIT / "pkg" / "test_gone.py").as_posix()]
