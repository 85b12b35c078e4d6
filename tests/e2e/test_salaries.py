"""The salaries API through real gunicorn: URL-encoded names, next links, 304."""

import argparse

import pytest
import requests

from api.salary_import import import_salaries
from core.settings import Settings

CSV = (
    "Name,Position Title,Department,Employee Annual Salary\n"
    + "".join(
        f'"SMITH,  ANN {i}",MOTOR TRUCK DRIVER,STREETS & SAN,$71780.80\n'
        for i in range(5)
    )
    + '"KOCH,  STEVEN",ADMINISTRATIVE SECRETARY,MAYOR\'S OFFICE,$0.96\n'
)


@pytest.fixture
def server(tmp_path, live_server, database_url):
    csv_path = tmp_path / "salaries.csv"
    csv_path.write_text(CSV)
    url = database_url
    args = argparse.Namespace(csv=str(csv_path), if_empty=False)
    assert import_salaries(Settings(database_url=url), args) == 0
    return live_server(env={"DATABASE_URL": url}, workers=1)


def test_encoded_names_and_next_links_work_over_http(server):
    stats = requests.get(server.url + "/departments/mayor%27s%20office", timeout=10)
    assert stats.status_code == 200
    assert stats.json()["salary"]["min"] == 0.96

    names = []
    url = server.url + "/dept/STREETS%20%26%20SAN?limit=2&order=name"
    while url:
        page = requests.get(url, timeout=10)
        assert page.status_code == 200, page.text
        names += [employee["name"] for employee in page.json()["data"]]
        link = page.json()["next"]
        url = link and server.url + link
    assert names == [f"SMITH,  ANN {i}" for i in range(5)]


def test_conditional_get_over_http(server):
    first = requests.get(server.url + "/departments", timeout=10)
    assert first.json() == {"departments": ["MAYOR'S OFFICE", "STREETS & SAN"]}
    again = requests.get(
        server.url + "/departments",
        headers={"If-None-Match": first.headers["ETag"]},
        timeout=10,
    )
    assert again.status_code == 304
    assert again.content == b""
    assert "max-age" in again.headers["Cache-Control"]
