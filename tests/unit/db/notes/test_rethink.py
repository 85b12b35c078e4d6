"""The RethinkDB store beyond the shared contract (tests/unit/db/notes/test_base.py).

Without a server: its URL and settings, a server that is down or silent.
With one (RETHINKDB_URL): the schema that init-db creates, several hosts,
a server that dies and returns, and the crash windows of a write: a
process that dies after committing a note but before logging its change,
or after taking a number but before committing, loses nothing and holds
no reader up. Notes created together: one range of numbers and one insert,
and a group refused, cut off or partly written acknowledges exactly the
notes committed, loses none of them, and leaves no number for a reader to
wait on for ever.
"""

import contextlib
import dataclasses
import datetime
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import pytest
from rethinkdb import r
from rethinkdb.errors import ReqlDriverError
from rethinkdb.errors import ReqlInternalError

import db.notes.rethink
from api.app import create_app
from api.cli import init_rethinkdb
from api.cli import main as cli_main
from core.notes import new_note_id
from db.errors import Unavailable
from db.notes.rethink import RethinkNotesStore
from db.rethink import Connector
from db.rethink import RethinkTarget
from db.rethink import close_quietly
from db.rethink import parse_url
from db.stores import open_stores
from tests.support.live import settings_for
from tests.support.note_groups import count_ids
from tests.support.note_groups import create_together
from tests.support.notes_backends import drop_tables
from tests.support.notes_backends import require_rethinkdb
from tests.support.processes import free_port
from tests.support.processes import wait_until
from tests.support.tcp_proxy import TcpProxy
from tests.support.tls import make_certificates
from tests.support.tls import openssl

LONG_AGO = datetime.timedelta(hours=1)

# The URL


@pytest.mark.parametrize(
    "url, target",
    [
        (
            "rethinkdb://db.local:28015/todo",
            RethinkTarget((("db.local", 28015),), "todo"),
        ),
        (
            "rethinkdb://127.0.0.1/notes",
            RethinkTarget((("127.0.0.1", 28015),), "notes"),
        ),
        ("rethinkdb://db", RethinkTarget((("db", 28015),), "todo")),
        (
            "rethinkdb://ann:s%40cret@db:29015/todo",
            RethinkTarget((("db", 29015),), "todo", user="ann", password="s@cret"),
        ),
        (
            "rethinkdb://h1:28015,h2,[::1]:28017/todo",
            RethinkTarget((("h1", 28015), ("h2", 28015), ("::1", 28017)), "todo"),
        ),
        (
            "rethinkdb://ann:pw@h1:1,h2:2/my_db-2",
            RethinkTarget((("h1", 1), ("h2", 2)), "my_db-2", "ann", "pw"),
        ),
    ],
)
def test_parse_url(url, target):
    assert parse_url(url) == target


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://db:28015/todo", "scheme"),
        ("rethinkdb:///todo", "host is missing"),
        ("rethinkdb://h1,,h2/todo", "host is missing"),
        ("rethinkdb://:28015/todo", "host is missing"),
        ("rethinkdb://db:port/todo", "port"),
        ("rethinkdb://db:0/todo", "port"),
        ("rethinkdb://db:28015/a/b", "one database name"),
        ("rethinkdb://db:28015/my%20notes", "not a valid RethinkDB name"),
        ("rethinkdb://db:28015/notes.v2", "not a valid RethinkDB name"),
        ("rethinkdb://ann:hunter2@db:x/todo", "port"),
    ],
)
def test_bad_urls_are_refused_naming_the_setting_without_secrets(url, problem):
    with pytest.raises(ValueError) as caught:
        parse_url(url)
    message = str(caught.value)
    assert message.startswith("RETHINKDB_URL") and problem in message
    assert "hunter2" not in message


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory) -> str:
    """A CA certificate (PEM) made by openssl for the test."""
    if openssl() is None:
        pytest.skip("no openssl command to make a CA certificate")
    return str(make_certificates(tmp_path_factory.mktemp("certs")).ca)


def test_ca_turns_tls_on_for_every_connection(ca_file):
    target = parse_url(f"rethinkdb://ann:pw@h1,h2:29015/todo?ca={quote(ca_file)}")
    assert target == RethinkTarget(
        (("h1", 28015), ("h2", 29015)), "todo", "ann", "pw", ca_file=ca_file
    )
    assert target.driver_options() == {
        "user": "ann",
        "password": "pw",
        "ssl": {"ca_certs": ca_file},
    }
    assert target.describe() == f"rethinkdb://h1:28015,h2:29015/todo?ca={ca_file}"
    assert "ssl" not in parse_url("rethinkdb://h1/todo").driver_options()


@pytest.mark.parametrize(
    "query, problem",
    [
        ("?ca=", "ca= names the CA's PEM file"),
        ("?tls=on", "the one parameter is ca, once"),
        ("?ca={ca}&ca={ca}", "the one parameter is ca, once"),
        ("?ca={ca}&verify=no", "the one parameter is ca, once"),
        ("?ca={ca}#x", "the path is one database name"),
        ("?ca={missing}", "No such file or directory"),
        ("?ca={not_pem}", "no PEM certificate in it"),
    ],
)
def test_a_bad_ca_is_refused_at_start(ca_file, tmp_path, query, problem):
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    query = query.format(ca=ca_file, missing=tmp_path / "nope.pem", not_pem=not_pem)
    with pytest.raises(ValueError) as caught:
        parse_url("rethinkdb://ann:hunter2@db/todo" + query)
    message = str(caught.value)
    assert message.startswith("RETHINKDB_URL") and problem in message
    assert "hunter2" not in message


def test_the_app_refuses_to_start_with_a_bad_url_or_table(tmp_path):
    base = settings_for(tmp_path)
    with pytest.raises(ValueError, match="RETHINKDB_URL.*host is missing"):
        create_app(dataclasses.replace(base, rethinkdb_url="rethinkdb:///todo"))
    with pytest.raises(ValueError, match="RETHINKDB_URL.*database name"):
        create_app(dataclasses.replace(base, rethinkdb_url="rethinkdb://h/a.b"))
    with pytest.raises(ValueError, match="RETHINKDB_TABLE"):
        open_stores(
            dataclasses.replace(
                base, rethinkdb_url="rethinkdb://h/todo", rethinkdb_table="my notes"
            )
        )


def test_init_db_refuses_bad_settings_with_a_message(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("RETHINKDB_URL", "rethinkdb:///todo")
    assert cli_main(["init-db"]) == 2
    assert "RETHINKDB_URL" in caplog.text
    monkeypatch.setenv("RETHINKDB_URL", "rethinkdb://127.0.0.1/todo")
    monkeypatch.setenv("RETHINKDB_REPLICAS", "0")
    assert cli_main(["init-db"]) == 2
    assert "RETHINKDB_REPLICAS" in caplog.text


# A server that is down or silent (no server needed)


@pytest.fixture
def closed_port_url():
    """A RethinkDB URL on a local port nothing listens on."""
    return f"rethinkdb://127.0.0.1:{free_port()}/todo"


@pytest.fixture
def silent_server_url():
    """A RethinkDB URL on a socket that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"rethinkdb://127.0.0.1:{listener.getsockname()[1]}/todo"


def test_unreachable_server_is_unavailable(closed_port_url):
    store = RethinkNotesStore.from_url(closed_port_url, timeout=2)
    for call in (
        store.ping,
        lambda: store.get("0" * 32),
        lambda: store.list_page(5),
        lambda: store.create("t", "b"),
    ):
        with pytest.raises(Unavailable) as caught:
            call()
        assert caught.value.detail == "notes store unavailable"
    with pytest.raises(Unavailable):
        next(store.changes(since=0, timeout=1))


def test_silent_server_times_out_instead_of_hanging(silent_server_url):
    store = RethinkNotesStore.from_url(silent_server_url, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        store.ping()
    with pytest.raises(Unavailable):
        next(store.changes(since=0))
    # Two calls, each bounded by the 0.5 s timeout; far below this bound.
    assert time.monotonic() - started < 10


def test_init_db_gives_up_on_a_server_that_never_answers(
    closed_port_url, caplog, tmp_path
):
    settings = settings_for(
        tmp_path, rethinkdb_url=closed_port_url, rethinkdb_timeout=1.0
    )
    assert init_rethinkdb(settings, wait=0) == 1
    assert "no RethinkDB server answers" in caplog.text


def _notes_store_errors(client) -> float:
    # The counter is this process's: earlier tests may have counted some.
    sample = 'store_errors_total{backend="rethinkdb",route="/notes"} '
    for line in client.simulate_get("/metrics").text.splitlines():
        if line.startswith(sample):
            return float(line[len(sample) :])
    return 0.0


def test_api_answers_503_problem_and_ready_names_notes(make_client, closed_port_url):
    client = make_client(rethinkdb_url=closed_port_url, rethinkdb_timeout=1.0)
    before = _notes_store_errors(client)
    for result in (
        client.simulate_post("/notes", json={"title": "t"}),
        client.simulate_get("/notes"),
        client.simulate_get("/notes/" + "0" * 32),
    ):
        assert result.status_code == 503
        assert result.headers["content-type"] == "application/problem+json"
        assert result.json["detail"] == "notes store unavailable"
    assert _notes_store_errors(client) == before + 2  # POST and GET /notes
    ready = client.simulate_get("/ready")
    assert ready.status_code == 503
    assert ready.json["backends"]["sql"] == "ok"
    assert ready.json["backends"]["notes"] == "down"
    assert "notes" in ready.json["detail"]


def test_client_errors_are_answered_before_the_store_is_asked(
    make_client, closed_port_url
):
    client = make_client(rethinkdb_url=closed_port_url, rethinkdb_timeout=1.0)
    assert client.simulate_post("/notes", json={"title": ""}).status_code == 422
    assert client.simulate_get("/notes/not-an-id").status_code == 404


# With a server


@pytest.fixture
def url():
    """RETHINKDB_URL of the test server (skips, or fails when required, without)."""
    return require_rethinkdb()


@pytest.fixture
def store_on(rethinkdb_table):
    """Factory: a store on the emptied session tables; closed after the test."""
    made = []

    def make(url: str, **options) -> RethinkNotesStore:
        options = {"table": rethinkdb_table, "timeout": 5, **options}
        made.append(RethinkNotesStore.from_url(url, **options))
        return made[-1]

    yield make
    for store in made:
        store.close()


@contextlib.contextmanager
def connection(url):
    conn = Connector(parse_url(url), timeout=10).connect()
    try:
        yield conn
    finally:
        close_quietly(conn)


def test_init_db_creates_tables_and_indexes_once(monkeypatch, tmp_path, url, caplog):
    table = f"notes_init_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("RETHINKDB_URL", url)
    monkeypatch.setenv("RETHINKDB_TABLE", table)
    try:
        assert cli_main(["init-db"]) == 0
        assert cli_main(["init-db"]) == 0  # again: nothing to do, no duplicate
        target = parse_url(url)
        with connection(url) as conn:
            config = r.db("rethinkdb").table("table_config")
            for name in RethinkNotesStore.table_names_for(table):
                assert (
                    config.filter({"db": target.db, "name": name}).count().run(conn)
                    == 1
                )
            indexes = r.db(target.db).table(table).index_list().run(conn)
            assert sorted(indexes) == ["outbox", "position"]
        monkeypatch.setenv("RETHINKDB_REPLICAS", "5")  # a one-server cluster
        assert cli_main(["init-db"]) == 1
        assert "RETHINKDB_REPLICAS=5" in caplog.text
    finally:
        drop_tables(url, table)


def test_two_processes_creating_the_schema_at_once_leave_one_of_each(url):
    table = f"notes_race_{uuid.uuid4().hex[:8]}"
    stores = [RethinkNotesStore.from_url(url, table=table, timeout=30) for _ in "ab"]
    barrier = threading.Barrier(2)
    errors = []

    def create(store):
        barrier.wait()
        try:
            store.create_schema()
        except Exception as ex:  # noqa: BLE001 - reported by the assertion below
            errors.append(ex)

    threads = [threading.Thread(target=create, args=(s,)) for s in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        target = parse_url(url)
        with connection(url) as conn:
            names = list(
                r.db("rethinkdb")
                .table("table_config")
                .filter({"db": target.db})["name"]
                .run(conn)
            )
        for name in RethinkNotesStore.table_names_for(table):
            assert names.count(name) == 1
        note = stores[0].create("after the race", "")
        assert stores[1].get(note.id) == note
    finally:
        for store in stores:
            store.close()
        drop_tables(url, table)


def test_requests_never_create_tables(make_client, url):
    table = f"notes_missing_{uuid.uuid4().hex[:8]}"
    client = make_client(rethinkdb_url=url, rethinkdb_table=table)
    assert client.simulate_post("/notes", json={"title": "t"}).status_code == 503
    assert client.simulate_get("/notes").status_code == 503
    ready = client.simulate_get("/ready")
    assert ready.status_code == 503 and ready.json["backends"]["notes"] == "down"
    with connection(url) as conn:
        assert table not in r.db(parse_url(url).db).table_list().run(conn)


def with_hosts(url: str, hosts: str) -> str:
    """``url`` on ``hosts``: its database, and its ``?ca=`` if the server is TLS."""
    return urlunsplit(urlsplit(url)._replace(netloc=hosts))


def test_the_first_host_that_answers_is_used(store_on, url):
    target = parse_url(url)
    dead = f"127.0.0.1:{free_port()}"
    live = ",".join(f"{host}:{port}" for host, port in target.hosts)
    store = store_on(with_hosts(url, f"{dead},{live}"))
    note = store.create("through the second host", "")
    assert store.get(note.id) == note


def test_a_server_that_dies_is_left_for_the_next_host(store_on, url):
    target = parse_url(url)
    proxy = TcpProxy(target.hosts[0]).start()  # "server 1": dies below
    server_2 = "{}:{}".format(*target.hosts[0])
    store = store_on(with_hosts(url, f"127.0.0.1:{proxy.port},{server_2}"))
    first = store.create("via server 1", "")
    proxy.stop()
    # The request on the dead connection answers 503; the next one reconnects.
    with contextlib.suppress(Unavailable):
        store.get(first.id)
    second = store.create("via server 2", "")
    assert [n.id for n in store.list_page(10).notes] == [second.id, first.id]


def test_concurrent_calls_each_hold_a_connection_of_their_own(store_on, url):
    # Three calls inside the store at once: with one shared connection they
    # would wait for each other and the barrier would break.
    store = store_on(url)
    barrier = threading.Barrier(3, timeout=10)
    used = []

    def call():
        used.append(store._run(lambda conn: (barrier.wait(), id(conn))[1]))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(used)) == 3
    assert store.create("after", "").title == "after"  # the pool is reused


def test_a_broken_connection_drops_the_idle_ones_too(store_on, url):
    target = parse_url(url)
    proxy = TcpProxy(target.hosts[0]).start()
    server_2 = "{}:{}".format(*target.hosts[0])
    store = store_on(with_hosts(url, f"127.0.0.1:{proxy.port},{server_2}"))
    barrier = threading.Barrier(2, timeout=10)
    threads = [
        threading.Thread(target=store._run, args=(lambda conn: barrier.wait(),))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    note = store.create("two connections through server 1", "")
    proxy.stop()
    with contextlib.suppress(Unavailable):
        store.get(note.id)
    # One failed request, then server 2, never the other dead connection.
    for _ in range(3):
        assert store.get(note.id) == note


def test_recovers_within_seconds_when_the_server_returns(
    make_client, url, rethinkdb_table
):
    target = parse_url(url)
    proxy = TcpProxy(target.hosts[0]).start()
    client = make_client(
        rethinkdb_url=with_hosts(url, f"127.0.0.1:{proxy.port}"),
        rethinkdb_table=rethinkdb_table,
        rethinkdb_timeout=2.0,
    )
    assert client.simulate_post("/notes", json={"title": "before"}).status_code == 201
    proxy.stop()
    down = client.simulate_get("/notes")
    assert down.status_code == 503 and down.json["detail"] == "notes store unavailable"
    assert client.simulate_get("/ready").json["backends"]["notes"] == "down"
    proxy.start()  # back on the same address
    back = wait_until(
        lambda: client.simulate_get("/notes").status_code == 200,
        timeout=10,
        what="the store back",
    )
    assert back
    assert client.simulate_get("/ready").json["backends"]["notes"] == "ok"


def test_a_change_committed_by_a_writer_that_died_before_logging_it_arrives(
    store_on, url, monkeypatch
):
    writer, reader = store_on(url), store_on(url)
    kept = writer.create("logged normally", "")
    # The writer dies between committing and logging: its log step never runs.
    monkeypatch.setattr(writer.changelog, "log_soon", lambda conn, entry: None)
    orphan = writer.create("committed, never logged", "")
    updated = writer.patch(kept.id, {"body": "also never logged"})
    writer.delete(orphan.id)  # a tombstone whose delete is not logged either
    monkeypatch.undo()

    with contextlib.closing(reader.changes(since=0, timeout=10)) as changes:
        got = [next(changes) for _ in range(4)]
    assert [(c.type, c.note_id) for c in got] == [
        ("created", kept.id),
        ("created", orphan.id),
        ("updated", kept.id),
        ("deleted", orphan.id),
    ]
    assert got[2].new == updated and got[3].old.title == "committed, never logged"
    # The reader wrote them to the log and emptied the outboxes (tombstone gone).
    target = parse_url(url)
    notes, changes_table, _ = reader.table_names
    with connection(url) as conn:
        database = r.db(target.db)
        assert database.table(changes_table).count().run(conn) == 4
        assert database.table(notes).count().run(conn) == 1  # the tombstone went


def test_numbers_of_writers_that_died_are_skipped_without_waiting_per_gap(
    store_on, url
):
    # Writers that take a number and die before committing leave gaps;
    # once their lease is over a reader voids them all in one go.
    writer = store_on(url, lease=0.2, clock_margin=0.1)
    made = []
    for i in range(20):
        writer._run(
            writer.changelog.take_seq
        )  # a writer dies right after taking a number
        made.append(writer.create(f"note {i}", ""))
    time.sleep(0.4)  # the last lease is over
    reader = store_on(url, lease=0.2, clock_margin=0.1, batch=7)
    with contextlib.closing(reader.changes(since=0, timeout=5)) as changes:
        got = [next(changes) for _ in range(20)]
    assert [c.new.id for c in got] == [n.id for n in made]
    assert [c.seq for c in got] == list(range(2, 41, 2))


def test_a_live_reader_waits_for_a_number_in_flight_then_goes_on(store_on, url):
    writer = store_on(url, lease=0.5, clock_margin=0.2)
    reader = store_on(url, lease=0.5, clock_margin=0.2)
    received, stop = [], threading.Event()

    def consume():
        for change in reader.changes(since=0, stop=stop):
            received.append(change)

    consumer = threading.Thread(target=consume)
    consumer.start()
    try:
        writer._run(writer.changelog.take_seq)  # number 1: its writer dies
        late = writer.create("number 2", "")
        wait_until(lambda: received, timeout=10, what="number 2 after 1 is voided")
        assert [c.new.id for c in received] == [late.id]
        again = writer.create("number 3", "")
        wait_until(lambda: len(received) == 2, timeout=10, what="number 3")
        assert received[1].new.id == again.id
    finally:
        stop.set()
        consumer.join(15)


def outboxes(url, store):
    """Every note document's id and outbox seqs, tombstones included."""
    with connection(url) as conn:
        table = r.db(parse_url(url).db).table(store.table_names[0])
        return {d["id"]: [e["id"] for e in d["outbox"]] for d in table.run(conn)}


def test_a_following_reader_empties_the_outboxes_and_drops_tombstones(store_on, url):
    writer = store_on(url)
    reader = store_on(url, empty_interval=0.1)
    kept = writer.create("kept", "")
    writer.patch(kept.id, {"body": "changed"})
    gone = writer.create("gone", "")
    writer.delete(gone.id)
    assert outboxes(url, writer)[gone.id] == [3, 4]  # a tombstone, not logged for sure
    stop = threading.Event()
    changes = []
    consumer = threading.Thread(
        target=lambda: changes.extend(reader.changes(since=0, stop=stop))
    )
    consumer.start()
    try:
        wait_until(
            lambda: outboxes(url, writer) == {kept.id: []},
            timeout=10,
            what="empty outboxes, no tombstone",
        )
    finally:
        stop.set()
        consumer.join(15)
    assert [c.seq for c in changes] == [1, 2, 3, 4]


def test_a_reader_catching_up_leaves_the_outboxes_until_it_is_live(store_on, url):
    writer = store_on(url)
    reader = store_on(url, batch=2, empty_interval=0.05)
    notes = [writer.create(f"n{i}", "") for i in range(6)]
    stop, paused, seqs = threading.Event(), threading.Event(), []

    def consume():
        for change in reader.changes(since=0, stop=stop):
            seqs.append(change.seq)
            if len(seqs) == 3:  # mid-way through the catch-up
                paused.wait(10)

    consumer = threading.Thread(target=consume)
    consumer.start()
    try:
        wait_until(lambda: len(seqs) == 3, timeout=10, what="three changes read")
        time.sleep(0.3)  # rounds of emptying would have run by now
        assert outboxes(url, writer) == {n.id: [i] for i, n in enumerate(notes, 1)}
        paused.set()
        wait_until(
            lambda: outboxes(url, writer) == {n.id: [] for n in notes},
            timeout=10,
            what="outboxes emptied once the reader is live",
        )
    finally:
        stop.set()
        paused.set()
        consumer.join(15)
    assert seqs == [1, 2, 3, 4, 5, 6]


def test_outboxes_are_emptied_a_batch_of_notes_at_a_time(store_on, url, monkeypatch):
    writer = store_on(url, empty_batch=2)
    notes = [writer.create(f"n{i}", "") for i in range(5)]  # seqs 1..5
    shipped = []
    ship = writer.changelog.ship
    monkeypatch.setattr(
        writer.changelog,
        "ship",
        lambda conn, outboxes, wait=False: (
            shipped.append(len(outboxes)) or ship(conn, outboxes, wait)
        ),
    )
    with connection(url) as conn:
        assert writer.changelog.empty_outboxes(conn, 4) is True
    assert shipped == [2, 2, 0]
    assert outboxes(url, writer) == {n.id: [] for n in notes[:4]} | {notes[4].id: [5]}
    assert sorted(log_entries(url, writer)) == [1, 2, 3, 4, 5]


def test_emptying_outboxes_stops_between_two_batches(store_on, url):
    writer = store_on(url, empty_batch=2)
    notes = [writer.create(f"n{i}", "") for i in range(4)]
    with connection(url) as conn:
        assert writer.changelog.empty_outboxes(conn, 4, stop=lambda: True) is False
    left = outboxes(url, writer)
    assert sorted(len(left[n.id]) for n in notes) == [0, 0, 1, 1]


def test_outbox_entries_that_stay_after_shipping_fail_the_emptying(
    store_on, url, monkeypatch
):
    writer = store_on(url, empty_batch=2)
    for i in range(3):
        writer.create(f"n{i}", "")
    monkeypatch.setattr(writer.changelog, "ship", lambda *args: False)  # loses them
    with connection(url) as conn, pytest.raises(ReqlDriverError, match="stayed"):
        writer.changelog.empty_outboxes(conn, 3)


def test_without_a_reader_a_writer_empties_a_long_outbox_itself(store_on, url):
    writer = store_on(url, outbox_limit=4)
    note = writer.create("busy", "")
    for i in range(11):
        writer.patch(note.id, {"body": str(i)})
        assert len(outboxes(url, writer)[note.id]) <= 5
    with contextlib.closing(writer.changes(since=0, timeout=10)) as stream:
        assert [next(stream).seq for _ in range(12)] == list(range(1, 13))


# Group commit: creates of one moment share a range of numbers and one insert


@pytest.fixture
def ids(monkeypatch):
    return count_ids(monkeypatch, db.notes.rethink)


def log_entries(url, store):
    """The change log's entries by seq: their type."""
    with connection(url) as conn:
        table = r.db(parse_url(url).db).table(store.table_names[1])
        return {e["id"]: e["type"] for e in table.run(conn)}


def read(store, count, timeout=10):
    with contextlib.closing(store.changes(since=0, timeout=timeout)) as stream:
        return [next(stream) for _ in range(count)]


def split(outcomes):
    notes = [o for o in outcomes if not isinstance(o, Exception)]
    return notes, [o for o in outcomes if isinstance(o, Exception)]


def count_takes(monkeypatch, store) -> list:
    """The size of each range of numbers ``store`` takes from now on."""
    taken = []
    take_seq = store.changelog.take_seq
    monkeypatch.setattr(
        store.changelog,
        "take_seq",
        lambda conn, count=1: taken.append(count) or take_seq(conn, count),
    )
    return taken


def test_notes_created_together_take_one_range_and_one_insert(
    monkeypatch, store_on, url, ids
):
    store = store_on(url)
    taken = count_takes(monkeypatch, store)
    notes = create_together(monkeypatch, store, ids, 8)

    assert taken == [8]
    assert sorted(note.position for note in notes) == list(range(1, 9))
    for note in notes:
        assert store.get(note.id) == note
    changes = read(store, 8)
    by_seq = {note.position: note for note in notes}
    assert [c.seq for c in changes] == list(range(1, 9))
    assert all(c.type == "created" and c.new == by_seq[c.seq] for c in changes)
    assert log_entries(url, store) == {seq: "created" for seq in range(1, 9)}


def test_creates_arriving_while_a_group_writes_form_the_next_group(
    monkeypatch, store_on, url
):
    store = store_on(url)
    taken = count_takes(monkeypatch, store)
    insert, writing, release = store._insert_docs, threading.Event(), threading.Event()

    def held(conn, docs, deadline):
        if len(taken) == 1:  # the first group holds the turn until released
            writing.set()
            release.wait(10)
        return insert(conn, docs, deadline)

    monkeypatch.setattr(store, "_insert_docs", held)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(store.create, "first", "")
        assert writing.wait(10)
        rest = [pool.submit(store.create, f"next {i}", "") for i in range(5)]
        wait_until(
            lambda: len(store._groups._group or ()) == 5,
            timeout=10,
            what="the next group gathering the five",
        )
        release.set()
        notes = [first.result(10)] + [future.result(10) for future in rest]

    assert taken == [1, 5]
    assert sorted(note.position for note in notes) == list(range(1, 7))
    assert [c.seq for c in read(store, 6)] == list(range(1, 7))


def test_an_id_drawn_twice_fails_alone_and_leaves_no_hole(
    monkeypatch, store_on, url, ids
):
    store = store_on(url)
    first = store.create("first", "")
    ids.calls = 0
    monkeypatch.setattr(
        ids, "_make_id", lambda: first.id if ids.calls == 3 else new_note_id()
    )
    notes, failed = split(create_together(monkeypatch, store, ids, 5))

    assert len(notes) == 4 and len(failed) == 1
    assert isinstance(failed[0], RuntimeError)  # a 500, as on the SQL store
    assert len(store.list_page(50).notes) == 5
    # Its number in the group and the one it took alone were voided at once:
    # a reader with the usual 2 s lease waits for neither.
    started = time.monotonic()
    changes = read(store, 5)
    assert time.monotonic() - started < 1.5
    assert [c.new.id for c in changes[1:]] == [
        n.id for n in sorted(notes, key=lambda n: n.position)
    ]
    assert sorted(log_entries(url, store).values()).count("void") == 2


def test_a_group_refused_past_its_lease_takes_new_numbers(
    monkeypatch, store_on, url, ids
):
    store = store_on(url)
    insert = store._insert_docs
    refusals = []

    def late_once(conn, docs, deadline):
        if not refusals:  # as if the batch reached the server after its lease
            refusals.append([doc["seq"] for doc in docs])
            return insert(conn, docs, deadline - LONG_AGO)
        return insert(conn, docs, deadline)

    monkeypatch.setattr(store, "_insert_docs", late_once)
    notes = create_together(monkeypatch, store, ids, 4)

    assert refusals == [[1, 2, 3, 4]]
    assert sorted(note.position for note in notes) == [5, 6, 7, 8]
    assert log_entries(url, store) == {
        **{seq: "void" for seq in range(1, 5)},
        **{seq: "created" for seq in range(5, 9)},
    }
    assert [c.seq for c in read(store, 4)] == [5, 6, 7, 8]


def test_a_group_always_past_its_lease_is_unavailable_and_voided(
    monkeypatch, store_on, url, ids
):
    store = store_on(url)
    insert = store._insert_docs
    monkeypatch.setattr(
        store,
        "_insert_docs",
        lambda conn, docs, deadline: insert(conn, docs, deadline - LONG_AGO),
    )
    notes, failed = split(create_together(monkeypatch, store, ids, 3))

    assert notes == [] and len(failed) == 3
    assert all(isinstance(ex, Unavailable) for ex in failed)
    assert store.list_page(50).notes == []
    assert set(log_entries(url, store).values()) == {"void"}  # every number
    monkeypatch.undo()
    after = store.create("after", "")
    assert [c.new for c in read(store, 1)] == [after]


def test_a_group_whose_answer_is_lost_acknowledges_none_and_loses_none(
    monkeypatch, store_on, url, ids
):
    # The server commits the batch, then the connection dies before the
    # answer: no note is acknowledged, yet every one reaches the readers.
    store = store_on(url)
    insert = store._insert_docs

    def lost(conn, docs, deadline):
        insert(conn, docs, deadline)
        raise ReqlDriverError("Connection is closed.")

    monkeypatch.setattr(store, "_insert_docs", lost)
    notes, failed = split(create_together(monkeypatch, store, ids, 4))
    monkeypatch.undo()

    assert notes == [] and all(isinstance(ex, Unavailable) for ex in failed)
    after = store.create("after", "")
    changes = read(store_on(url), 5)
    assert [c.seq for c in changes] == [1, 2, 3, 4, 5]
    assert sorted(c.new.title for c in changes[:4]) == [f"note {i}" for i in range(4)]
    assert changes[4].new == after


@pytest.mark.parametrize(
    "error",
    [
        ReqlDriverError("Connection is closed."),
        # What a server answers during an election, seen under kill -9.
        ReqlInternalError(
            "Unexpected exception: The attempt to read or modify the table's "
            "configuration failed because none of the servers were accessible."
        ),
    ],
)
def test_a_group_whose_insert_fails_unanswered_is_voided_by_readers(
    monkeypatch, store_on, url, ids, error
):
    store = store_on(url, lease=0.3, clock_margin=0.1)

    def dies(conn, docs, deadline):
        raise error

    monkeypatch.setattr(store, "_insert_docs", dies)
    notes, failed = split(create_together(monkeypatch, store, ids, 3))
    monkeypatch.undo()

    assert notes == [] and all(isinstance(ex, Unavailable) for ex in failed)
    assert log_entries(url, store) == {}  # the writer could not know: no void
    after = store.create("after", "")
    reader = store_on(url, lease=0.3, clock_margin=0.1)
    assert [c.new for c in read(reader, 1)] == [after]
    assert log_entries(url, store) == {1: "void", 2: "void", 3: "void", 4: "created"}


def test_a_group_partly_committed_acknowledges_exactly_what_was(
    monkeypatch, store_on, url, ids
):
    # Per-document errors other than a taken id (a shard without its
    # primary): the notes committed are acknowledged, the others answer 503
    # and their numbers are left to the readers.
    store = store_on(url, lease=0.3, clock_margin=0.1)
    insert = store._insert_docs

    def half(conn, docs, deadline):
        result = insert(conn, docs[::2], deadline)
        lost = "Cannot perform write: primary replica for shard not available"
        return {**result, "errors": [lost] * len(docs[1::2])}

    monkeypatch.setattr(store, "_insert_docs", half)
    notes, failed = split(create_together(monkeypatch, store, ids, 4))
    monkeypatch.undo()

    assert sorted(note.position for note in notes) == [1, 3]
    assert len(failed) == 2 and all(isinstance(ex, Unavailable) for ex in failed)
    after = store.create("after", "")
    reader = store_on(url, lease=0.3, clock_margin=0.1)
    changes = read(reader, 3)
    assert [c.seq for c in changes] == [1, 3, 5]
    assert [c.new for c in changes] == sorted(notes, key=lambda n: n.position) + [after]
    assert log_entries(url, store)[2] == log_entries(url, store)[4] == "void"
