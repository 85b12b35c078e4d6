"""``python -m api serve``: gunicorn with gunicorn.conf.py and PyPy's GC settings."""

import os
import sys

import pytest

from api import cli


class Exec(Exception):
    """Stands for execve, which would replace the test process."""


@pytest.fixture
def execve(monkeypatch):
    calls = []

    def fake(path, argv, env):
        calls.append((path, argv, env))
        raise Exec

    monkeypatch.setattr(cli.os, "execve", fake)
    return calls


def test_serve_runs_gunicorn_with_the_projects_config_and_gc_settings(
    execve, monkeypatch
):
    monkeypatch.delenv("PYPY_GC_NURSERY", raising=False)
    monkeypatch.delenv("PYPY_GC_INCREMENT_STEP", raising=False)
    with pytest.raises(Exec):
        cli.main(["serve"])
    path, argv, env = execve[0]
    assert path == sys.executable
    assert argv[1:] == ["-m", "gunicorn", "-c", cli.GUNICORN_CONF, "api.wsgi:app"]
    assert os.path.isfile(cli.GUNICORN_CONF)
    assert env["PYPY_GC_NURSERY"] == "16MB"
    assert env["PYPY_GC_INCREMENT_STEP"] == "4MB"


def test_gc_settings_in_the_environment_win_and_the_app_can_be_named(
    execve, monkeypatch
):
    monkeypatch.setenv("PYPY_GC_NURSERY", "64MB")
    monkeypatch.setenv("PYPY_GC_INCREMENT_STEP", "")
    with pytest.raises(Exec):
        cli.main(["serve", "bench.bare:app"])
    _, argv, env = execve[0]
    assert argv[-1] == "bench.bare:app"
    assert (env["PYPY_GC_NURSERY"], env["PYPY_GC_INCREMENT_STEP"]) == ("64MB", "")
