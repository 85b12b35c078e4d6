"""API keys: the store, the per-worker cache, the CLI, the start check."""

import dataclasses
import os
import stat

import pytest
import sqlalchemy as sa

from api.cli import main
from core import apikeys
from core.settings import Settings
from db.errors import Conflict
from db.errors import NotFound
from db.keys import LAST_USED_EVERY
from db.keys import KeyCache
from db.keys import KeyRow
from db.keys import KeyStore
from db.keys import open_without_keys


@pytest.fixture
def store(database):
    return KeyStore(database)


def test_only_the_digest_is_stored_and_the_key_is_found_by_it(store):
    key, secret = store.create("ci", "read,write")
    assert (key.name, key.scopes, key.granted) == (
        "ci",
        ("read", "write"),
        {"read", "write"},
    )
    with store._db.read() as connection:
        rows = connection.execute(sa.select(KeyRow.__table__)).all()
    assert [row.digest for row in rows] == [apikeys.digest(secret)]
    assert secret not in repr(rows)
    assert store.find(secret) == key
    assert store.find(apikeys.new_key()) is None
    assert store.find("not a key") is None


def test_names_are_unique_and_revoked_keys_are_not_found(store):
    _, secret = store.create("ci", "admin")
    with pytest.raises(Conflict):
        store.create("ci", "read")
    with pytest.raises(ValueError, match="name"):
        store.create(" ", "read")
    assert store.any_active()
    revoked = store.revoke("ci")
    assert revoked.revoked_at is not None
    assert store.find(secret) is None
    assert not store.any_active()
    with pytest.raises(NotFound):
        store.revoke("ci")
    assert [key.name for key in store.list()] == ["ci"]


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_cache_trusts_an_answer_for_its_ttl_only(store):
    clock = FakeClock()
    cache = KeyCache(store, ttl=1.0, clock=clock)
    _, secret = store.create("ci", "read")
    assert cache.get(secret).name == "ci"
    store.revoke("ci")
    clock.now += 0.9
    assert cache.get(secret) is not None  # still trusted
    clock.now += 0.2
    assert cache.get(secret) is None  # asked again: revoked
    unknown = apikeys.new_key()
    assert cache.get(unknown) is None


def test_last_used_is_written_at_most_once_a_minute(store, monkeypatch):
    clock = FakeClock()
    cache = KeyCache(store, ttl=1.0, clock=clock)
    _, secret = store.create("ci", "read")
    touched = []
    real_touch = store.touch
    monkeypatch.setattr(
        store, "touch", lambda *args: touched.append(args) or real_touch(*args)
    )
    for _ in range(5):
        cache.get(secret)
        clock.now += 2.0  # a new lookup each time
    assert len(touched) == 1
    clock.now += LAST_USED_EVERY
    cache.get(secret)
    assert len(touched) == 2
    assert store.list()[0].last_used_at is not None


def test_a_server_beyond_loopback_does_not_start_open(store):
    loopback = Settings(host="127.0.0.1")
    network = Settings(host="0.0.0.0")
    assert open_without_keys(loopback, store) is None
    assert "no API key exists" in open_without_keys(network, store)
    assert open_without_keys(dataclasses.replace(network, auth="off"), store) is None
    store.create("ops", "admin")
    assert open_without_keys(network, store) is None


def test_the_cli_shows_a_key_once_and_never_again(
    database_url, monkeypatch, capsys, store
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["keys", "create", "--name", "reports", "--scopes", "read"]) == 0
    secret = capsys.readouterr().out.splitlines()[-1]
    assert store.find(secret).name == "reports"
    assert main(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert "reports" in listed and "read" in listed and secret not in listed
    assert main(["keys", "create", "--name", "reports", "--scopes", "read"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["keys", "revoke", "reports"]) == 0
    assert store.find(secret) is None
    assert main(["keys", "revoke", "reports"]) == 1


def test_the_development_key_is_made_once_in_a_private_file(
    database_url, monkeypatch, capsys, store, tmp_path
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    path = tmp_path / "var" / "api-key"
    assert main(["keys", "dev", "--file", str(path)]) == 0
    secret = path.read_text().strip()
    assert capsys.readouterr().out.splitlines()[-1] == secret
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert store.find(secret).granted == {"read", "write", "admin"}
    assert main(["keys", "dev", "--file", str(path)]) == 0  # the same key again
    assert secret in capsys.readouterr().out
    store.revoke(store.find(secret).name)
    assert main(["keys", "dev", "--file", str(path)]) == 0  # a new one
    assert path.read_text().strip() != secret
    monkeypatch.setenv("HOST", "0.0.0.0")
    assert main(["keys", "dev", "--file", str(path)]) == 2
