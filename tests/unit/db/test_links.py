"""The links store through its interface, with a clock the test controls."""

import datetime

import pytest
import sqlalchemy as sa

from db.errors import Conflict
from db.errors import Gone
from db.errors import NotFound
from db.link_tables import Link
from db.link_tables import Visit
from db.links import LinkStore
from db.sql import Database

T0 = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)


class Clock:
    """A settable clock."""

    def __init__(self, now: datetime.datetime):
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def store(database, clock):
    store = LinkStore(database, "salt", clock=clock)
    yield store
    store.close()


def test_a_link_expires_at_its_expiry_time(store, clock):
    link = store.create(
        "https://example.com/", expires_at=T0 + datetime.timedelta(hours=1)
    )
    clock.now = T0 + datetime.timedelta(minutes=59, seconds=59)
    assert store.visit(link.code, None, None, "192.0.2.1") == "https://example.com/"
    clock.now = T0 + datetime.timedelta(hours=1)
    with pytest.raises(Gone, match="expired"):
        store.visit(link.code, None, None, "192.0.2.1")
    assert store.get(link.code).visits == 1


def test_expiry_in_another_time_zone_is_the_same_instant(store, clock):
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    link = store.create(
        "https://example.com/",
        expires_at=datetime.datetime(2030, 1, 1, 14, 30, tzinfo=plus_two),
    )
    assert store.get(link.code).expires_at == T0 + datetime.timedelta(minutes=30)
    clock.now = T0 + datetime.timedelta(minutes=30)
    with pytest.raises(Gone):
        store.visit(link.code, None, None, None)


def test_reuse_ignores_expired_links(store, clock):
    expiry = T0 + datetime.timedelta(hours=1)
    link = store.create("https://example.com/", expires_at=expiry)
    assert store.find_reusable("https://example.com/", expires_at=expiry) == link
    clock.now = expiry
    assert store.find_reusable("https://example.com/", expires_at=expiry) is None


def test_max_visits_is_a_hard_limit(store):
    link = store.create("https://example.com/", max_visits=3)
    for _ in range(3):
        store.visit(link.code, None, None, None)
    for _ in range(2):
        with pytest.raises(Gone, match="maximum"):
            store.visit(link.code, None, None, None)
    assert store.get(link.code).visits == 3
    visits, more = store.visits(link.code, limit=10)
    assert len(visits) == 3 and not more


def test_unknown_and_deleted_codes_are_not_found(store):
    link = store.create("https://example.com/", alias="gone-soon")
    store.delete("gone-soon")
    for operation in (
        lambda: store.get(link.code),
        lambda: store.delete(link.code),
        lambda: store.visit(link.code, None, None, None),
        lambda: store.visits(link.code, 10),
        lambda: store.get("nope"),
    ):
        with pytest.raises(NotFound):
            operation()
    with pytest.raises(Conflict):
        store.create("https://example.com/", alias="gone-soon")


def test_deleting_a_link_drops_its_visits(store, settings):
    link = store.create("https://example.com/")
    store.visit(link.code, "https://r.example/", "agent", "192.0.2.1")
    store.delete(link.code)
    database = Database(settings.database_url)
    with database.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Visit)) == 0
    database.dispose()


def test_create_many_answers_each_link_in_order(store, clock):
    store.create("https://example.com/", alias="taken")
    expiry = T0 + datetime.timedelta(days=1)
    results = store.create_many(
        [
            {"url": "https://example.com/1"},
            {"url": "https://example.com/2", "alias": "taken"},
            {"url": "https://example.com/3", "alias": "fresh", "max_visits": 2},
            {"url": "https://example.com/4", "alias": "fresh"},
            {"url": "https://example.com/5", "expires_at": expiry},
        ]
    )
    first, taken, fresh, again, expiring = results
    assert isinstance(taken, Conflict) and taken.extra == {"alias": "taken"}
    assert isinstance(again, Conflict)
    assert fresh.code == "fresh" and fresh.max_visits == 2
    assert expiring.expires_at == expiry and expiring.created_at == T0
    for info in (first, fresh, expiring):
        assert store.get(info.code) == info


def test_create_many_stores_nothing_twice_when_it_retries(store, monkeypatch):
    # A concurrent writer taking an alias between the check and the insert
    # (PostgreSQL) fails the batch's transaction: it is rolled back and done
    # again, so no link is stored twice.
    original = store._create_rows
    calls = []

    def racing(connection, rows):
        calls.append(len(rows))
        result = original(connection, rows)
        if len(calls) == 1:
            raise sa.exc.IntegrityError("INSERT", {}, Exception("alias taken"))
        return result

    monkeypatch.setattr(store, "_create_rows", racing)
    results = store.create_many([{"url": f"https://example.com/{n}"} for n in range(5)])
    assert calls == [5, 5]
    with store._db.session(write=False) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Link)) == 5
    assert [store.get(info.code).url for info in results] == [
        f"https://example.com/{n}" for n in range(5)
    ]
