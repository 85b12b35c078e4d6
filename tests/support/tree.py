"""The project's own files, for the tests that read the whole tree."""

import os
from pathlib import Path
from typing import Iterator

from tests.support.processes import ROOT

#: The top-level folders of the project's Python modules (tests/ aside).
SOURCE_PACKAGES = (
    "api",
    "bench",
    "clients",
    "core",
    "db",
    "gateways",
    "loadtest",
    "resources",
    "web",
    "workers",
)
#: Folders that hold no project text: environments, caches, local state.
SKIP = {
    ".venv",
    ".git",
    "node_modules",
    "var",
    "__pycache__",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
}


def project_files(root: Path = ROOT) -> Iterator[Path]:
    """Every file below ``root`` outside SKIP, in a stable order."""
    for folder, folders, names in os.walk(root):
        folders[:] = sorted(set(folders) - SKIP)
        for name in sorted(names):
            yield Path(folder, name)
