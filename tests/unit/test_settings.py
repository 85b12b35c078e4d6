"""Settings from the environment."""

import dataclasses
import re
from pathlib import Path

import pytest

from core.settings import Settings


def test_defaults_without_environment():
    settings = Settings.from_env({})
    assert settings.port == 8000
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.database_url == "sqlite:///var/api.db"
    assert settings.rethinkdb_url is None


def test_values_are_converted():
    settings = Settings.from_env(
        {
            "PORT": "9000",
            "COLLATZ_TIMEOUT": "2.5",
            "RETHINKDB_URL": "rethinkdb://db:28015/todo",
        }
    )
    assert settings.port == 9000
    assert settings.collatz_timeout == 2.5
    assert settings.rethinkdb_url == "rethinkdb://db:28015/todo"


def test_bad_value_names_the_variable():
    with pytest.raises(ValueError, match="PORT"):
        Settings.from_env({"PORT": "eighty"})


def test_readme_documents_every_setting():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [env for env, *_ in Settings().describe() if f"`{env}`" not in readme]
    assert missing == []


#: A default that is a listening or connecting address: ``make serve``'s.
ADDRESS = re.compile(r"^(tcp://)?[\w.]+:\d+$")


def test_a_test_shares_no_address_with_make_serve(settings):
    defaults = Settings()
    names = [
        field.name
        for field in dataclasses.fields(Settings)
        if field.name == "port" or ADDRESS.match(str(field.default))
    ]
    # The pattern finds every address setting there is now.
    assert {
        "port",
        "collatz_frontend",
        "collatz_backend",
        "push_pub_endpoint",
        "push_sse_bind",
        "push_wake_address",
    } <= set(names)
    shared = [n for n in names if getattr(settings, n) == getattr(defaults, n)]
    assert shared == []
