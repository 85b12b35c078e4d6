"""The links store through its interface, with a clock the test controls."""

import datetime

import pytest
import sqlalchemy as sa

from db.errors import Conflict
from db.errors import Gone
from db.errors import NotFound
from db.links import LinkStore
from db.links import Visit
from db.schema import create_schema
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
def store(settings, clock):
    database = Database(settings.database_url)
    create_schema(database.engine)
    store = LinkStore(database, "salt", clock=clock)
    yield store
    store.close()
    database.dispose()


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
