"""Every project module the tree names exists.

Docstrings, comments, strings (``prog=`` of a parser, logger names, patch
targets), the README and the configuration files name modules as
``python -m workers.push``, ``db.notes.sql``, ``core.settings.Settings`` or
``workers/push/feed.py``. A module renamed or moved leaves such names behind
and nothing else notices: an import would fail, prose does not. The Python
code itself (its imports and attribute uses) is left to Python.
"""

import ast
import io
import re
import tokenize
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Optional

import pytest

from tests.support.live import ROOT
from tests.support.tree import SOURCE_PACKAGES
from tests.support.tree import project_files

PACKAGES = SOURCE_PACKAGES + ("tests",)
_PACKAGE = "(?:" + "|".join(PACKAGES) + ")"
#: ``db.notes.sql``, ``core.settings.Settings``; not a part of a longer name
#: (``gunicorn.workers.sync``), a path (``var/api.db``) or a URL's host.
DOTTED = re.compile(rf"(?<![\w./@-]){_PACKAGE}(?:\.\w+)+")
#: ``workers/push/feed.py``, relative to the checkout.
PATH = re.compile(rf"(?<![\w.-])(?<!\w/){_PACKAGE}/[\w/]+\.py\b")
#: Names that end so are files (``bench.db``, ``requirements-bench.txt``).
FILE_SUFFIXES = {"c", "csv", "db", "json", "log", "md", "png", "py", "sqlite", "txt"}
#: Last parts of host names such as api.example.com.
HOST_SUFFIXES = {"com", "net", "org"}
#: Dotted names that are deliberately no module, each for the reason given.
NOT_MODULES = {
    "api.route": "the WSGI environ key of the matched route (web/metrics.py)",
    "api.peer_addr": "the WSGI environ key of the peer's address (web/middleware.py)",
    "api.test": "a logger name in tests/unit/core/test_logs.py",
    "db.local": "a RethinkDB host in tests/unit/db/notes/test_rethink.py",
    "bench.broken_figure": "a figure module tests/unit/bench/test_figures.py makes up",
    "api.key_secret": "the API's CURVE secret key file (python -m api zmq-keys)",
    "api.notes": "a package of the client generated in test_generated_client.py",
    "api.links": "a package of the client generated in test_generated_client.py",
}
#: This file's examples of stale names are meant.
HERE = Path(__file__).resolve()
#: Files read whole: the README, the docs, configuration, scripts.
TEXT_SUFFIXES = {".md", ".ini", ".conf", ".toml", ".yml", ".yaml", ".c", ".lua"}
TEXT_NAMES = {"Makefile", "Dockerfile"}
#: Token types whose text is prose or a value, never code.
PROSE_TOKENS = {tokenize.STRING, tokenize.COMMENT}
if hasattr(tokenize, "FSTRING_MIDDLE"):  # Python 3.12 splits f-strings up
    PROSE_TOKENS.add(tokenize.FSTRING_MIDDLE)


def _files():
    for path in project_files():
        if path != HERE and (
            path.suffix == ".py"
            or path.suffix in TEXT_SUFFIXES
            or path.name in TEXT_NAMES
            or path.parent.name == ".ci"
        ):
            yield path


@cache
def _texts(path: Path) -> tuple:
    """``(line, text)`` of every piece of ``path`` that may name a module."""
    source = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return tuple(enumerate(source.splitlines(), 1))
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return tuple((t.start[0], t.string) for t in tokens if t.type in PROSE_TOKENS)


def _names(text: str):
    """The dotted project names in ``text``, with their offsets."""
    for match in DOTTED.finditer(text):
        name = match.group()
        if name.rsplit(".", 1)[1] in FILE_SUFFIXES | HOST_SUFFIXES:
            continue
        if re.match(r":\d", text[match.end() :]):  # host:port
            continue
        yield match.start(), name


def _module_file(parts) -> Optional[Path]:
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return base if base.is_dir() and any(base.glob("*.py")) else None


@cache
def _top_level_names(path: Path) -> frozenset:
    """Names a module's own code binds at its top level."""
    if path.is_dir():
        return frozenset()
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return frozenset(names)


@cache
def resolves(name: str) -> bool:
    """Whether ``name`` is a project module or a name in one."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        path = _module_file(parts[:end])
        if path is not None:
            break
    else:
        return False
    attributes = parts[end:]
    if not attributes:
        return True
    if attributes[0] not in _top_level_names(path):
        return False
    if len(attributes) == 1:
        return True
    # A member of a class (maybe inherited): the module itself answers.
    value = import_module(".".join(parts[:end]))
    for attribute in attributes:
        if not hasattr(value, attribute):
            return False
        value = getattr(value, attribute)
    return True


def unknown_names(path: Path):
    """``(line, name)`` of every project name in ``path`` that names nothing."""
    for number, text in _texts(path):
        for start, name in _names(text):
            if name not in NOT_MODULES and not resolves(name):
                yield number + text.count("\n", 0, start), name
        for match in PATH.finditer(text):
            if not (ROOT / match.group()).is_file():
                yield number + text.count("\n", 0, match.start()), match.group()


def test_the_walk_reads_code_docs_and_configuration():
    names = {path.relative_to(ROOT).as_posix() for path in _files()}
    expected = {
        "README.md",
        "docs/index.md",
        "docs/hooks.py",
        "mkdocs.yml",
        "supervisord.conf",
        "Makefile",
        "api/app.py",
    }
    assert expected <= names


def test_every_named_module_exists():
    unknown = [
        f"{path.relative_to(ROOT)}:{number}: {name}"
        for path in _files()
        for number, name in unknown_names(path)
    ]
    assert unknown == []


def test_every_exception_is_still_named_somewhere():
    """An entry of NOT_MODULES whose text is gone would hide a real mistake."""
    seen = {
        name
        for path in _files()
        for _, text in _texts(path)
        for _, name in _names(text)
    }
    assert set(NOT_MODULES) - seen == set()


@pytest.mark.parametrize(
    "text",
    [
        '"""Run by ``python -m workers.collatz_broker``."""\n',
        "# see db.notes.sql.NoSuchStore\n",
        'parser = make(prog="python -m api.nothing")\n',
        "# frames are in workers/collatz_protocol.py\n",
    ],
)
def test_a_stale_name_is_caught(tmp_path, text):
    path = tmp_path / "stale.py"
    path.write_text(text)
    assert list(unknown_names(path)) != []


@pytest.mark.parametrize(
    "text",
    [
        '"""``python -m workers.collatz.broker``, see core.settings.Settings."""\n',
        "# db.notes.sql.SqlNotesStore.create and workers/push/feed.py\n",
        'URL = "sqlite:///var/api.db"  # gunicorn.workers.sync, api.example.com:80\n',
        "workers.append(db.table)  # code: Python checks it\n",
    ],
)
def test_a_good_name_or_no_module_name_passes(tmp_path, text):
    path = tmp_path / "fine.py"
    path.write_text(text)
    assert list(unknown_names(path)) == []
