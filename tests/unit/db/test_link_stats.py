"""``GET /links/{code}/stats``: the rollup, checked against the visits stored."""

import collections
import datetime
import random
from urllib.parse import quote
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from alembic import command

from core import linkstats
from core.codes import id_for_code
from db.link_stats import VisitHour
from db.link_stats import VisitSource
from db.link_tables import Link
from db.link_tables import Visit
from db.links import LinkStore
from db.schema import alembic_config
from db.schema import create_schema
from db.sql import make_engine
from tests.support.problems import assert_problem

UTC = datetime.timezone.utc
START = datetime.datetime(2025, 1, 20, 21, 30, tzinfo=UTC)  # a Monday evening
REFERRERS = [
    None,
    "https://news.example.org/story",
    "https://NEWS.example.org/other",
    "https://mail.example:8443/inbox/42?token=s3cret",
    "android-app://com.google.android.gm/",
]
AGENTS = [
    None,
    "curl/8.5.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML,"
    " like Gecko) Version/17.5 Safari/605.1.15",
]


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime.datetime):
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now


def iso(moment: datetime.datetime) -> str:
    return quote(moment.isoformat())


def visit_at_random(store, clock, code, count, seed, flush_every=None):
    """``count`` visits over about 70 days from START, with assorted sources."""
    rng = random.Random(seed)
    moments = sorted(
        START + datetime.timedelta(seconds=rng.randrange(70 * 86400))
        for _ in range(count)
    )
    for n, moment in enumerate(moments, 1):
        clock.now = moment
        store.visit(code, rng.choice(REFERRERS), rng.choice(AGENTS), "192.0.2.1")
        if flush_every and n % flush_every == 0:
            store.recorder.flush()
    store.recorder.flush()


def bucket_of(moment: datetime.datetime, interval: str) -> datetime.datetime:
    """The bucket of ``moment``, written out apart from core.linkstats."""
    if interval == "hour":
        return datetime.datetime(moment.year, moment.month, moment.day, moment.hour)
    day = datetime.datetime(moment.year, moment.month, moment.day)
    if interval == "day":
        return day
    if interval == "week":
        return day - datetime.timedelta(days=moment.isoweekday() - 1)
    return datetime.datetime(moment.year, moment.month, 1)


def from_raw_visits(database, code_id, since, until, interval):
    """What the statistics must say, computed from every visit row."""
    with database.read() as connection:
        rows = connection.execute(
            sa.select(Visit.visited_at, Visit.referrer, Visit.user_agent).where(
                Visit.link_id == code_id
            )
        ).all()
    series, hosts, families = (collections.Counter() for _ in range(3))
    for visited_at, referrer, agent in rows:
        if not since <= visited_at < until:
            continue
        series[bucket_of(visited_at, interval)] += 1
        hosts[urlsplit(referrer).hostname if referrer else None] += 1
        families[linkstats.agent_family(agent)] += 1
    return series, hosts, families


@pytest.mark.parametrize("max_visits", [None, 10_000])  # batched, counted
@pytest.mark.parametrize(
    "interval, since, until",
    [
        # Sources from hour rows, day rows, or both (partial days at the ends).
        ("hour", "2025-01-21T22:10:00", "2025-01-23T03:00:00"),
        ("hour", "2025-01-25T01:00:00", "2025-01-25T23:00:00"),
        ("hour", "2025-01-25T00:00:00", "2025-01-27T00:00:00"),
        ("day", "2025-01-20T00:00:00", "2025-04-01T00:00:00"),
        ("day", "2025-02-03T12:00:00", "2025-02-17T06:00:00"),
        ("week", "2025-01-01T00:00:00", "2025-04-30T00:00:00"),
        ("month", "2024-12-15T00:00:00", "2025-04-01T00:00:00"),
    ],
)
def test_statistics_equal_what_the_visit_rows_give(
    client, database, max_visits, interval, since, until
):
    clock = Clock(START)
    store = LinkStore(database, "salt", clock=clock, flush_interval=600)
    try:
        code = store.create("https://example.com/", max_visits=max_visits).code
        visit_at_random(store, clock, code, 400, seed=7, flush_every=37)
    finally:
        store.close()
    since_at = datetime.datetime.fromisoformat(since)
    until_at = datetime.datetime.fromisoformat(until)
    result = client.simulate_get(
        f"/links/{code}/stats",
        query_string=f"interval={interval}&since={since}Z&until={until}Z&top=100",
    )
    assert result.status_code == 200, result.text
    stats = result.json
    first = bucket_of(since_at, interval)
    # The answer covers whole buckets: from the one since falls in.
    series, hosts, families = from_raw_visits(
        database,
        id_for_code(code),
        first,
        datetime.datetime.fromisoformat(stats["until"][:-1]),
        interval,
    )
    assert stats["since"] == first.isoformat() + ".000Z"
    assert stats["interval"] == interval and stats["code"] == code
    shown = {
        datetime.datetime.fromisoformat(bucket["start"][:-1]): bucket["visits"]
        for bucket in stats["visits"]
    }
    assert {start: n for start, n in shown.items() if n} == dict(series)
    assert sum(series.values()) == stats["total"] > 0
    starts = sorted(shown)
    assert starts[0] == first and starts[-1] < until_at
    assert all(bucket_of(start, interval) == start for start in starts)
    assert len(starts) == len(set(starts)) == len(stats["visits"])
    assert {r["host"]: r["visits"] for r in stats["referrers"]} == dict(hosts)
    assert {a["family"]: a["visits"] for a in stats["agents"]} == dict(families)
    visits = [r["visits"] for r in stats["referrers"]]
    assert visits == sorted(visits, reverse=True)


def test_the_rollup_of_a_counted_visit_is_written_with_it(database):
    # A long interval: a batched visit would not be written before the check.
    store = LinkStore(database, "salt", flush_interval=600)
    try:
        code = store.create("https://example.com/", max_visits=5).code
        store.visit(code, "https://news.example/", "curl/8", "192.0.2.1")
        with database.read() as connection:
            hours = connection.execute(sa.select(VisitHour.visits)).scalars().all()
            sources = connection.execute(
                sa.select(
                    VisitSource.kind,
                    VisitSource.period,
                    VisitSource.name,
                    VisitSource.visits,
                )
            ).all()
        assert hours == [1]
        assert sorted(sources) == [
            ("agent", "day", "curl", 1),
            ("agent", "hour", "curl", 1),
            ("referrer", "day", "news.example", 1),
            ("referrer", "hour", "news.example", 1),
        ]
    finally:
        store.close()


def test_defaults_are_the_last_30_days_including_today(client):
    code = client.simulate_post("/links", json={"url": "example.com"}).json["code"]
    client.simulate_get(
        "/" + code, headers={"Referer": "https://news.example/a", "User-Agent": "x"}
    )
    client.simulate_get("/" + code, headers={"User-Agent": ""})  # neither
    stats = client.simulate_get(f"/links/{code}/stats").json
    assert stats["interval"] == "day"
    assert len(stats["visits"]) == 30
    today = datetime.datetime.now(UTC).date().isoformat()
    assert stats["visits"][-1] == {"start": today + "T00:00:00.000Z", "visits": 2}
    assert stats["total"] == 2
    assert stats["until"] > datetime.datetime.now(UTC).isoformat()
    assert stats["referrers"] == [
        {"host": None, "visits": 1},
        {"host": "news.example", "visits": 1},
    ]
    assert stats["agents"] == [
        {"family": None, "visits": 1},
        {"family": "other", "visits": 1},
    ]


@pytest.mark.parametrize(
    "interval, buckets", [("hour", 24), ("week", 12), ("month", 12)]
)
def test_each_interval_has_its_default_range(client, interval, buckets):
    code = client.simulate_post("/links", json={"url": "example.com"}).json["code"]
    client.simulate_get("/" + code)
    stats = client.simulate_get(f"/links/{code}/stats?interval={interval}").json
    assert len(stats["visits"]) == buckets
    assert stats["visits"][-1]["visits"] == 1 and stats["total"] == 1


def test_top_limits_the_sources(client):
    code = client.simulate_post("/links", json={"url": "example.com"}).json["code"]
    for n in range(5):
        for _ in range(n + 1):
            client.simulate_get(
                "/" + code, headers={"Referer": f"https://site{n}.example/"}
            )
    stats = client.simulate_get(f"/links/{code}/stats?top=2").json
    assert stats["referrers"] == [
        {"host": "site4.example", "visits": 5},
        {"host": "site3.example", "visits": 4},
    ]
    assert stats["total"] == 15


def test_delete_drops_the_rollup(client, database):
    code = client.simulate_post("/links", json={"url": "example.com"}).json["code"]
    client.simulate_get("/" + code)
    assert client.simulate_get(f"/links/{code}/stats").json["total"] == 1
    assert client.simulate_delete("/links/" + code).status_code == 204
    assert_problem(client.simulate_get(f"/links/{code}/stats"), 404)
    with database.read() as connection:
        for table in (VisitHour, VisitSource):
            count = sa.select(sa.func.count()).select_from(table)
            assert connection.execute(count).scalar_one() == 0


@pytest.mark.parametrize(
    "query, field",
    [
        ("interval=year", "interval"),
        ("interval=", "interval"),
        ("since=yesterday", "since"),
        ("until=2025-13-01", "until"),
        ("since=2025-02-01T00:00:00Z&until=2025-02-01T00:00:00Z", "since"),
        ("since=2025-02-02T00:00:00Z&until=2025-02-01T00:00:00Z", "since"),
        (
            "interval=hour&since=2025-01-01T00:00:00Z&until=2025-03-01T00:00:00Z",
            "since",
        ),
        ("interval=day&since=2020-01-01T00:00:00Z&until=2025-01-01T00:00:00Z", "since"),
        ("interval=month&until=0001-01-01T00:00:00Z", "since"),
        ("interval=month&since=9999-12-01T00:00:00Z", "since"),
        ("top=0", "top"),
        ("top=101", "top"),
    ],
)
def test_bad_stats_queries_are_422(client, query, field):
    code = client.simulate_post("/links", json={"url": "example.com"}).json["code"]
    problem = assert_problem(client.simulate_get(f"/links/{code}/stats?{query}"), 422)
    assert field in problem["errors"]


def test_a_thousand_buckets_are_fine(client):
    code = client.simulate_post("/links", json={"url": "example.com"}).json["code"]
    query = "interval=hour&since=2025-01-01T00:00:00Z&until=2025-02-11T16:00:00Z"
    stats = client.simulate_get(f"/links/{code}/stats?{query}").json
    assert len(stats["visits"]) == 1000 and stats["total"] == 0


@pytest.mark.parametrize("code", ["0000000", "nosuchalias", "a.b"])
def test_unknown_links_have_no_statistics(client, code):
    assert_problem(client.simulate_get(f"/links/{code}/stats"), 404)


def test_statistics_need_a_read_key(make_client):
    writer = make_client(scope="write")
    code = writer.simulate_post("/links", json={"url": "example.com"}).json["code"]
    assert_problem(make_client(scope=None).simulate_get(f"/links/{code}/stats"), 401)
    reader = make_client(scope="read")
    assert reader.simulate_get(f"/links/{code}/stats").status_code == 200


def test_the_migration_counts_the_visits_stored_before_it(database_url):
    engine = make_engine(database_url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
    links = sa.table(
        "links",
        sa.column("id"),
        sa.column("url"),
        sa.column("created_at"),
        sa.column("visits"),
        sa.column("deleted"),
    )
    visits = sa.table(
        "visits",
        sa.column("link_id"),
        sa.column("visited_at"),
        sa.column("referrer"),
        sa.column("user_agent"),
        sa.column("visitor"),
    )
    rng = random.Random(3)
    stored = [
        {
            "link_id": rng.choice((1, 2)),
            "visited_at": (
                START + datetime.timedelta(minutes=rng.randrange(9000))
            ).replace(tzinfo=None),
            "referrer": rng.choice(REFERRERS[:3]),
            "user_agent": rng.choice(AGENTS),
            "visitor": "x",
        }
        for _ in range(200)
    ]
    with engine.begin() as connection:
        connection.execute(
            links.insert(),
            [
                {
                    "id": n,
                    "url": "https://example.com/",
                    "created_at": START.replace(tzinfo=None),
                    "visits": 0,
                    "deleted": False,
                }
                for n in (1, 2)
            ],
        )
        connection.execute(visits.insert(), stored)
    create_schema(engine)
    with engine.connect() as connection:
        hours = connection.execute(
            sa.select(VisitHour.link_id, VisitHour.hour, VisitHour.visits)
        ).all()
        sources = {
            period: connection.execute(
                sa.select(
                    VisitSource.link_id,
                    VisitSource.kind,
                    VisitSource.name,
                    sa.func.sum(VisitSource.visits),
                )
                .where(VisitSource.period == period)
                .group_by(VisitSource.link_id, VisitSource.kind, VisitSource.name)
            ).all()
            for period in ("hour", "day")
        }
        versions = connection.execute(sa.select(Link.version)).scalars().all()
    engine.dispose()
    expected_hours = collections.Counter(
        (v["link_id"], bucket_of(v["visited_at"], "hour")) for v in stored
    )
    assert {(k, h): n for k, h, n in hours} == dict(expected_hours)
    expected_sources = collections.Counter()
    for v in stored:
        host = urlsplit(v["referrer"]).hostname if v["referrer"] else ""
        expected_sources[v["link_id"], "referrer", host] += 1
        family = linkstats.agent_family(v["user_agent"]) or ""
        expected_sources[v["link_id"], "agent", family] += 1
    for period in ("hour", "day"):
        assert {(k, kind, name): n for k, kind, name, n in sources[period]} == dict(
            expected_sources
        )
    assert versions == [1, 1]
