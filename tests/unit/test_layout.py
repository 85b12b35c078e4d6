"""The code's shape: a module over 300 lines says in its docstring why.

A long module is sometimes the clearest cut (one store's SQL, one protocol's
state machine), but never by accident: its docstring carries a paragraph
that starts with ``Over 300 lines:`` and gives the reason.
"""

import ast

from tests.support.live import ROOT

LIMIT = 300
MARK = "Over 300 lines:"
#: Folders that hold no project code.
SKIP = {".venv", ".git", "node_modules", "var", "__pycache__"}


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        if not SKIP.intersection(path.relative_to(ROOT).parts):
            yield path


def test_the_walk_finds_the_project():
    names = {path.relative_to(ROOT).as_posix() for path in _modules()}
    assert {"api/app.py", "db/links.py", "tests/unit/test_layout.py"} <= names


def test_every_long_module_says_why_it_is_long():
    unexplained = []
    for path in _modules():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= LIMIT:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        reason = docstring.partition(MARK)[2].strip()
        if len(reason) < 40:  # a sentence, not a placeholder
            unexplained.append(path.relative_to(ROOT).as_posix())
    assert unexplained == []
