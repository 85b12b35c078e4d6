"""``python -m api import-salaries``: loading, skipping, re-running, the API after."""

import argparse
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import types

import pytest

from api.salary_import import import_salaries
from db.salaries.store import VERSION_TTL
from tests.support.live import ROOT
from tests.support.live import child_env

HEADER = "Name,Position Title,Department,Employee Annual Salary\n"
FIRST = HEADER + (
    '"AARON,  ELVIA J",WATER RATE TAKER,WATER MGMNT,$88968.00\n'
    '"KOCH,  STEVEN",ADMINISTRATIVE SECRETARY,MAYOR\'S OFFICE,$0.96\n'
    ",,,\n"
    '"SMITH,  ANN",MOTOR TRUCK DRIVER,STREETS & SAN,$71780.80\n'
    "BROKEN ROW,TITLE,STREETS & SAN,lots\n"
    '"JONES,  BOB",MOTOR TRUCK DRIVER,STREETS & SAN,$71780.00\n'
    "\n"
)
SECOND = HEADER + '"NEW,  PERSON",CLERK,DoIT,$50000.00\n'


def run_import(settings, path, if_empty=False) -> int:
    return import_salaries(
        settings, argparse.Namespace(csv=str(path), if_empty=if_empty)
    )


@pytest.fixture
def first_csv(tmp_path):
    path = tmp_path / "first.csv"
    path.write_text(FIRST)
    return path


@pytest.fixture
def second_csv(tmp_path):
    path = tmp_path / "second.csv"
    path.write_text(SECOND)
    return path


def employees(client):
    return client.simulate_get("/employees").json["items"]


def test_import_loads_rows_and_prints_what_it_skipped(
    make_client, settings, first_csv, capsys
):
    assert run_import(settings, first_csv) == 0
    out = capsys.readouterr().out
    assert "loaded 4 employees in 3 departments from first.csv" in out
    assert "skipped 2 blank and 1 malformed rows" in out
    assert "line 6:" in out and "lots" in out
    client = make_client()
    assert [e["name"] for e in employees(client)] == [
        "AARON,  ELVIA J",
        "JONES,  BOB",
        "KOCH,  STEVEN",
        "SMITH,  ANN",
    ]
    streets = client.simulate_get("/departments/streets & san").json
    assert streets == {
        "name": "STREETS & SAN",
        "employees": 2,
        "salary": {
            "min": 71780.0,
            "max": 71780.8,
            "mean": 71780.4,
            "median": 71780.4,
            "total": 143560.8,
        },
    }


def test_reimport_replaces_instead_of_duplicating(
    make_client, settings, first_csv, capsys
):
    assert run_import(settings, first_csv) == 0
    assert run_import(settings, first_csv) == 0
    client = make_client()
    assert len(employees(client)) == 4
    assert client.simulate_get("/departments/STREETS & SAN").json["employees"] == 2


def test_if_empty_leaves_loaded_data_alone(
    make_client, settings, first_csv, second_csv, capsys
):
    assert run_import(settings, first_csv, if_empty=True) == 0
    assert run_import(settings, second_csv, if_empty=True) == 0
    assert "already loaded (4 employees)" in capsys.readouterr().out
    assert len(employees(make_client())) == 4


def test_a_running_app_sees_a_new_import_with_a_new_etag(
    make_client, settings, first_csv, second_csv, capsys, monkeypatch
):
    # The store's clock, moved by the test alone: a slow import cannot end the TTL.
    now = [1000.0]
    monkeypatch.setattr(
        "db.salaries.store.time", types.SimpleNamespace(monotonic=lambda: now[0])
    )
    assert run_import(settings, first_csv) == 0
    client = make_client()
    before = client.simulate_get("/departments")
    assert before.json["departments"] == [
        "MAYOR'S OFFICE",
        "STREETS & SAN",
        "WATER MGMNT",
    ]
    assert client.simulate_get("/departments/doit").status_code == 404

    assert run_import(settings, second_csv) == 0
    # Another process imported: the app trusts the version it read for
    # VERSION_TTL seconds, then reads it again.
    assert client.simulate_get("/departments").json == before.json
    now[0] += VERSION_TTL
    after = client.simulate_get(
        "/departments", headers={"If-None-Match": before.headers["etag"]}
    )
    assert after.status_code == 200
    assert after.json["departments"] == ["DoIT"]
    assert after.headers["etag"] != before.headers["etag"]
    assert client.simulate_get("/departments/doit").json["employees"] == 1
    assert client.simulate_get("/departments/STREETS & SAN").status_code == 404


def test_before_any_import_the_lists_are_empty(client):
    assert client.simulate_get("/departments").json == {"departments": []}
    assert client.simulate_get("/employees").json == {"items": [], "next": None}
    assert client.simulate_get("/departments/POLICE").status_code == 404


@pytest.mark.parametrize("content", [None, "Who,What\nA,B\n", b"\xff\xfe\x00bad"])
def test_a_missing_or_foreign_file_fails_and_keeps_the_data(
    make_client, settings, first_csv, tmp_path, capsys, content
):
    assert run_import(settings, first_csv) == 0
    bad = tmp_path / "bad.csv"
    if isinstance(content, str):
        bad.write_text(content)
    elif content is not None:
        bad.write_bytes(content)
    assert run_import(settings, bad) == 2
    assert "bad.csv" in capsys.readouterr().err
    assert len(employees(make_client())) == 4


def run_cli(tmp_path, csv_path, stderr):
    env = child_env(tmp_path, {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"})
    return subprocess.run(
        [sys.executable, "-m", "api", "import-salaries", str(csv_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        timeout=120,
        check=True,
    )


def test_the_command_draws_a_progress_bar_on_a_terminal(tmp_path, first_csv):
    controller, terminal = pty.openpty()
    # A new pseudo-terminal is 0 columns wide; tqdm draws nothing into that.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        result = run_cli(tmp_path, first_csv, stderr=terminal)
        os.close(terminal)
        terminal = None
        drawn = os.read(controller, 65536).decode()
    finally:
        if terminal is not None:
            os.close(terminal)
        os.close(controller)
    assert "importing" in drawn and "4/4" in drawn
    assert b"loaded 4 employees" in result.stdout


def test_the_command_draws_no_progress_bar_into_a_pipe(tmp_path, first_csv):
    result = run_cli(tmp_path, first_csv, stderr=subprocess.PIPE)
    assert b"importing" not in result.stderr
    assert b"loaded 4 employees" in result.stdout
