"""The client packages of ``make clients``, built once per test session.

The fixtures run ``clients/generate.py``, the script ``make clients`` runs,
into temporary folders: the OpenAPI document is written once, the Python
package and its wheel once, the TypeScript package and its tarball once.

The Python client needs CPython 3.11 (the generated code's floor), with
openapi-python-client and pdm-backend installed (requirements-dev.txt, under
CPython only). Under PyPy the fixture takes the project's CPython virtualenv
(``make test`` installs it), so the PyPy run tests the client against the
PyPy server.
"""

import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Optional

import pytest

from tests.support.live import ROOT
from tests.support.live import TEST_DATABASE_URL

GENERATE = ROOT / "clients" / "generate.py"
GENERATOR = "openapi-python-client"
PACKAGE = "falcon_pypy_api_client"
NAME = "falcon-pypy-api-client"
COMMAND = "fpa"
#: The settings the clients read; a test sets each one, never the caller's.
CLIENT_SETTINGS = ("API_URL", "API_KEY", "STREAM_URL")

#: For the tests of a client that runs in a process of its own and only
#: talks HTTP: which interpreter serves, and on which database, changes
#: nothing for it, so it runs once, against the PyPy server on SQLite.
ONCE = [
    pytest.mark.skipif(
        platform.python_implementation() != "PyPy",
        reason="the client only talks HTTP: the PyPy run covers it",
    ),
    pytest.mark.skipif(
        bool(TEST_DATABASE_URL),
        reason="the client only talks HTTP: the run on SQLite covers it",
    ),
]


def client_python() -> Optional[Path]:
    """This interpreter or the CPython virtualenv's, whichever has the generator."""
    for directory in (
        Path(sys.executable).parent,
        ROOT / ".venv" / "python3" / "bin",
    ):
        if (directory / GENERATOR).is_file():
            return directory / "python"
    return None


def generate(python: Path, *args) -> str:
    """``clients/generate.py ARGS`` under ``python``; its output (it must pass)."""
    run = subprocess.run(
        [str(python), str(GENERATE), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    return output


class PythonClient:
    """The generated project, its wheel, and the wheel installed in ``site``."""

    def __init__(self, python: Path, output: str, project: Path, site: Path):
        self.python = python  # a CPython >= 3.11 with the client's dependencies
        self.output = output  # what the generator said
        self.project = project
        (self.wheel,) = (project / "dist").glob("*.whl")
        self.site = site  # pip install --target: the package and bin/fpa

    def operation_modules(self):
        return sorted((self.project / PACKAGE / "api").glob("*/*.py"))

    def env(self, **settings: str) -> dict:
        """An environment that imports the installed wheel; ``settings`` on top."""
        env = {k: v for k, v in os.environ.items() if k not in CLIENT_SETTINGS}
        env["PYTHONPATH"] = os.pathsep.join([str(self.site), str(ROOT)])
        env.update(settings)
        return env

    def fpa(self, *args: str, input: Optional[str] = None, **settings: str):
        """Run the installed ``fpa`` command with ``settings`` (API_URL, ...)."""
        return subprocess.run(
            [str(self.site / "bin" / COMMAND), *args],
            env=self.env(**settings),
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture(scope="session")
def openapi_document(tmp_path_factory) -> Path:
    """``python -m api openapi``, written once per session."""
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_text(
        subprocess.run(
            [sys.executable, "-m", "api", "openapi"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    return path


@pytest.fixture(scope="session")
def python_client(openapi_document, tmp_path_factory) -> PythonClient:
    python = client_python()
    if python is None:
        pytest.skip(
            f"{GENERATOR} is not installed: it installs under CPython only "
            "(requirements-dev.txt); `make test` puts it in .venv/python3, "
            "which the PyPy run uses too"
        )
    directory = tmp_path_factory.mktemp("python-client")
    project, site = directory / "project", directory / "site"
    output = generate(python, openapi_document, "--python", project)
    client = PythonClient(python, output, project, site)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        + ["--target", str(site), str(client.wheel)],
        check=True,
        capture_output=True,
    )
    return client


@pytest.fixture(scope="session")
def typescript_package(openapi_document, tmp_path_factory) -> Path:
    """The npm tarball of ``make clients``, from the project's Node tools.

    Its folder's ``node_modules`` is the project's, so that Node and ``tsc``
    find openapi-fetch and the tools from any folder below it.
    """
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"{' and '.join(missing)} missing: `make test` installs Debian's "
            "nodejs and npm when run as root"
        )
    tools = ROOT / "node_modules" / ".bin"
    for tool in ("openapi-typescript", "tsc"):
        assert (tools / tool).is_file(), f"{tools / tool} is missing: run `npm ci`"
    directory = tmp_path_factory.mktemp("typescript-client")
    (directory / "node_modules").symlink_to(ROOT / "node_modules")
    generate(sys.executable, openapi_document, "--typescript", directory / "package")
    (tarball,) = (directory / "package").glob("*.tgz")
    return tarball


def unpack(tarball: Path, node_modules: Path) -> Path:
    """The npm package ``tarball`` installed in ``node_modules``, as npm would."""
    # The "data" filter (where this Python has it) refuses links out of the folder.
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(tarball) as archive:
        archive.extractall(node_modules / ".unpacked", **safe)
    target = node_modules / NAME
    (node_modules / ".unpacked" / "package").rename(target)
    return target
