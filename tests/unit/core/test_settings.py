"""Settings from the environment."""

import dataclasses
import importlib.util
import re

import pytest

from core.ratelimit import parse_rate
from core.settings import Settings
from tests.support.live import ROOT


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


def _docs_hooks():
    """docs/hooks.py, the mkdocs hook that writes the settings table."""
    path = ROOT / "docs" / "hooks.py"
    spec = importlib.util.spec_from_file_location("docs_hooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_docs_table_lists_every_setting_with_its_default():
    hooks = _docs_hooks()
    page = (ROOT / "docs" / "operations" / "settings.md").read_text()
    assert hooks.SETTINGS_MARKER in page
    assert "docs/hooks.py" in (ROOT / "mkdocs.yml").read_text()
    rendered = hooks.on_page_markdown(page, None, None, None)
    assert hooks.SETTINGS_MARKER not in rendered
    rows = {
        line.split(" | ")[0].strip("| `"): line
        for line in rendered.splitlines()
        if line.startswith("| `")
    }
    for env, _value, default, doc in Settings().describe():
        assert env in rows, env
        assert doc.replace("|", "\\|") in rows[env]
        if default not in (None, ""):
            assert f"`{default}`" in rows[env]
    assert len(rows) == len(dataclasses.fields(Settings))


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


def test_a_limit_on_by_default_is_turned_off_by_off_not_by_empty():
    empty = Settings.from_env({"COLLATZ_RATE_LIMIT": ""})
    assert parse_rate(empty.collatz_rate_limit) is not None  # the default
    off = Settings.from_env({"COLLATZ_RATE_LIMIT": "off"})
    assert parse_rate(off.collatz_rate_limit) is None
