"""Webhook fan-out: a thread and a cursor per subscription (fake senders, real feed)."""

import contextlib
import dataclasses
import datetime
import threading
from typing import Tuple

import pytest

from core.notes import event_json
from db.checkpoints import CheckpointStore
from db.notes.sql import SqlNotesStore
from db.schema import create_schema
from db.sql import Database
from db.subscriptions import SubscriptionStore
from tests.support.processes import wait_until
from workers.push.fanout import MISSING_EVENT
from workers.push.fanout import Fanout
from workers.push.feed import EventFeed


@dataclasses.dataclass(frozen=True)
class Sub:
    id: int
    events: Tuple[str, ...] = ("note.created", "note.updated", "note.deleted")

    def wants(self, event_type):
        return event_type in self.events


@dataclasses.dataclass(frozen=True)
class Result:
    delivered: bool = True
    disabled: bool = False
    gone: bool = False


class World:
    """The subscriptions' endpoints: what each received, and how each answers."""

    def __init__(self):
        self.subscriptions = []  # what the subscription store lists as active
        self.received = {}
        self.replayed = {}  # subscription id -> ids of the events replayed
        self.hold = {}  # subscription id -> Event its endpoint waits for
        self.waiting = set()  # subscription ids whose delivery is being held
        self.disable = set()  # subscription ids the sender disables
        self.lock = threading.Lock()

    def active(self):
        with self.lock:
            return list(self.subscriptions)

    def make_sender(self, sleep):
        world = self

        class Sender:
            def deliver(self, subscription, event, replay=False):
                hold = world.hold.get(subscription.id)
                if hold is not None:
                    world.waiting.add(subscription.id)
                    hold.wait(30)
                with world.lock:
                    if replay:
                        world.replayed.setdefault(subscription.id, []).append(
                            event["id"]
                        )
                        return Result()
                    world.received.setdefault(subscription.id, []).append(event)
                    if subscription.id in world.disable:
                        world.subscriptions.remove(subscription)
                        return Result(delivered=False, disabled=True)
                return Result()

            def close(self):
                pass

        return Sender()

    def got(self, subscription_id):
        with self.lock:
            return [e["id"] for e in self.received.get(subscription_id, [])]


class Setup:
    """A store, a feed mirroring its log, checkpoints, and a fan-out to start."""

    def __init__(self, database_url):
        self.database = Database(database_url)
        create_schema(self.database.engine)
        self.store = SqlNotesStore(self.database, poll_interval=0.02)
        self.cursors = CheckpointStore(self.database)
        self.subscriptions = SubscriptionStore(self.database)
        self.world = World()
        self.feed = None
        self.fanout = None

    def start(self, position=0, replays=False, claims=None):
        self.feed = EventFeed(self.store, position)
        self.fanout = self.make_fanout(self.world, position, replays, claims)
        self.fanout.start()
        return self.fanout

    def make_fanout(self, world, position=0, replays=False, claims=None):
        return Fanout(
            self.feed,
            world,
            world.make_sender,
            self.cursors,
            position,
            refresh_interval=0.05,
            replays=self.subscriptions if replays else None,
            claims=claims,
        )

    def write(self, count=1):
        """Make ``count`` changes in the store (not yet in the feed)."""
        for _ in range(count):
            self.store.create("n", "")

    def mirror(self):
        """Publish what the store's log holds beyond the feed (the worker's job)."""
        target = self.store.last_seq()
        if self.feed.head >= target:
            return
        changes = self.store.changes(since=self.feed.head, timeout=10)
        with contextlib.closing(changes):
            for change in changes:
                self.feed.publish(event_json(change))
                if change.seq >= target:
                    return

    def wait_refreshed(self):
        """Until a refresh started after now has finished."""
        seen = self.fanout.refreshes
        wait_until(
            lambda: self.fanout.refreshes >= seen + 2, timeout=10, what="two refreshes"
        )

    def close(self):
        if self.fanout is not None:
            for hold in self.world.hold.values():
                hold.set()
            self.feed.close()
            self.fanout.stop()
        self.database.dispose()


class Claims:
    """Claims as db.pg_claims keeps them; ``others`` are held by other workers."""

    def __init__(self, others=()):
        self.others = set(others)
        self.held = set()
        self.lost = False
        self.closed = False
        self.lock = threading.Lock()

    def valid(self):
        with self.lock:
            if self.lost:
                self.held.clear()
                self.lost = False
                return False
            return True

    def acquire(self, key):
        with self.lock:
            if key in self.others:
                return False
            self.held.add(key)
            return True

    def release(self, key):
        with self.lock:
            self.held.discard(key)

    def close(self):
        self.closed = True


@pytest.fixture
def setup(database_url):
    setup = Setup(database_url)
    yield setup
    setup.close()


def test_each_subscription_gets_the_events_it_wants_in_order(setup):
    setup.world.subscriptions = [Sub(1), Sub(2, ("note.created",))]
    setup.start()
    setup.wait_refreshed()
    setup.write(2)
    setup.store.patch(setup.store.list_page(1).notes[0].id, {"body": "x"})
    setup.mirror()
    wait_until(lambda: setup.world.got(1) == [1, 2, 3], timeout=10, what="sub 1")
    wait_until(lambda: setup.world.got(2) == [1, 2], timeout=10, what="sub 2")
    # Each cursor is saved; the one that skipped the update moves past it too.
    wait_until(lambda: setup.cursors.load("webhook:1") == 3, timeout=10, what="cursor")
    wait_until(lambda: setup.cursors.load("webhook:2") == 3, timeout=10, what="cursor")


def test_a_subscription_that_never_answers_does_not_delay_another(setup):
    setup.world.subscriptions = [Sub(1), Sub(2)]
    setup.world.hold[1] = threading.Event()
    setup.start()
    setup.wait_refreshed()
    setup.write(5)
    setup.mirror()
    wait_until(
        lambda: setup.world.got(2) == [1, 2, 3, 4, 5],
        timeout=10,
        what="all five at the answering endpoint",
    )
    assert setup.world.got(1) == []  # still stuck on its first event
    setup.world.hold[1].set()
    wait_until(
        lambda: setup.world.got(1) == [1, 2, 3, 4, 5],
        timeout=10,
        what="the slow one catches up, in order",
    )


def test_after_a_restart_each_subscription_resumes_from_its_own_cursor(setup):
    setup.write(5)
    setup.cursors.save("webhook:1", 2)  # sub 1 had handled 1..2 when the worker died
    setup.cursors.save("webhook:9", 4)  # sub 9 was deleted while the worker was down
    setup.world.subscriptions = [Sub(1), Sub(2)]
    setup.start(position=5)  # the worker itself had forwarded 1..5
    setup.wait_refreshed()
    setup.write(1)
    setup.mirror()
    wait_until(
        lambda: setup.world.got(1) == [3, 4, 5, 6],
        timeout=10,
        what="sub 1 from its cursor (3..5 replayed from the log)",
    )
    wait_until(
        lambda: setup.world.got(2) == [6],
        timeout=10,
        what="sub 2, new, from the worker's position",
    )
    assert setup.cursors.load("webhook:9") is None


def test_a_new_subscription_gets_the_changes_made_after_it_appeared(setup):
    setup.world.subscriptions = [Sub(1)]
    setup.start()
    setup.write(2)
    setup.mirror()
    wait_until(lambda: setup.world.got(1) == [1, 2], timeout=10, what="sub 1")
    setup.wait_refreshed()
    with setup.world.lock:
        setup.world.subscriptions.append(Sub(2))
    wait_until(lambda: "2" in setup.fanout.status(), timeout=10, what="sub 2 seen")
    setup.write(1)
    setup.mirror()
    wait_until(lambda: setup.world.got(2) == [3], timeout=10, what="sub 2")
    assert setup.world.got(1) == [1, 2, 3]


def test_disabled_or_deleted_subscriptions_stop_and_lose_their_cursor(setup):
    setup.world.subscriptions = [Sub(1), Sub(2), Sub(3)]
    setup.world.disable.add(1)  # the sender disables it at its next delivery
    setup.start()
    setup.wait_refreshed()
    setup.write(1)
    setup.mirror()
    wait_until(lambda: setup.world.got(3) == [1], timeout=10, what="sub 3")
    with setup.world.lock:
        setup.world.subscriptions.remove(Sub(2))  # deleted through the API
    setup.wait_refreshed()
    setup.write(1)
    setup.mirror()
    wait_until(lambda: setup.world.got(3) == [1, 2], timeout=10, what="sub 3")
    setup.wait_refreshed()
    assert setup.world.got(1) == [1] and setup.world.got(2) == [1]
    assert setup.cursors.load_prefix("webhook:") == {"webhook:3": 2}
    assert set(setup.fanout.status()) == {"3"}


# --- replays -----------------------------------------------------------------


def _delivered(setup, subscription_id, outcomes):
    """Record one attempt per event id: ``{"1": True, "2": False}``."""
    for event_id, delivered in outcomes.items():
        setup.subscriptions.record_attempt(
            subscription_id, event_id, "note.created", 1, 200, 1.0, None, delivered
        )


def _replay_everything(setup, subscription_id, only_failed=False):
    far = datetime.timedelta(days=1)
    now = datetime.datetime.now(datetime.timezone.utc)
    return setup.subscriptions.queue_replay(
        subscription_id, now - far, now + far, only_failed
    )


def test_replays_are_delivered_in_order_then_forgotten(setup):
    sub = setup.subscriptions.create("https://example.com/", ["*"], "whsec_x")
    setup.world.subscriptions = [Sub(sub.id)]
    setup.write(3)
    setup.start(position=3, replays=True)
    setup.mirror()
    _delivered(setup, sub.id, {"1": True, "2": False, "3": False})
    assert _replay_everything(setup, sub.id, only_failed=True).queued == 2
    wait_until(
        lambda: setup.world.replayed.get(sub.id) == [2, 3],
        timeout=10,
        what="the failed deliveries replayed, in order",
    )
    wait_until(
        lambda: setup.subscriptions.pending_replays(sub.id) == [],
        timeout=10,
        what="the replays forgotten",
    )
    setup.write(1)
    setup.mirror()
    wait_until(lambda: setup.world.got(sub.id) == [4], timeout=10, what="live again")


def test_a_replay_of_an_event_the_log_lacks_is_a_failed_attempt(setup):
    sub = setup.subscriptions.create("https://example.com/", ["*"], "whsec_x")
    setup.world.subscriptions = [Sub(sub.id)]
    setup.write(1)
    setup.start(position=1, replays=True)
    setup.mirror()
    _delivered(setup, sub.id, {"1": False, "99": False})
    assert _replay_everything(setup, sub.id).queued == 2
    wait_until(
        lambda: setup.subscriptions.pending_replays(sub.id) == [],
        timeout=10,
        what="both replays handled",
    )
    assert setup.world.replayed[sub.id] == [1]
    attempts, _ = setup.subscriptions.attempts(sub.id, 10)
    missing = [a for a in attempts if a.event_id == "99" and a.replay]
    assert [(a.delivered, a.error) for a in missing] == [(False, MISSING_EVENT)]


def test_a_replay_cut_short_by_a_stop_is_made_again(setup):
    sub = setup.subscriptions.create("https://example.com/", ["*"], "whsec_x")
    setup.world.subscriptions = [Sub(sub.id)]
    setup.world.hold[sub.id] = threading.Event()  # the endpoint never answers
    setup.write(1)
    setup.start(position=1, replays=True)
    setup.mirror()
    _delivered(setup, sub.id, {"1": False})
    _replay_everything(setup, sub.id)
    # The worker stops (or dies) while the replay is under way...
    wait_until(lambda: sub.id in setup.world.waiting, timeout=10, what="replaying")
    setup.fanout.stop(timeout=0.2)
    assert len(setup.subscriptions.pending_replays(sub.id)) == 1
    # ... and the next one makes it again.
    world = World()
    world.subscriptions = [Sub(sub.id)]
    fanout = setup.make_fanout(world, position=1, replays=True)
    fanout.start()
    try:
        wait_until(
            lambda: world.replayed.get(sub.id) == [1],
            timeout=10,
            what="the replay made by the next worker",
        )
        wait_until(
            lambda: setup.subscriptions.pending_replays(sub.id) == [],
            timeout=10,
            what="the replay forgotten",
        )
    finally:
        fanout.stop()


def test_a_subscription_another_worker_claimed_is_left_to_it(setup):
    claims = Claims(others={2})
    setup.world.subscriptions = [Sub(1), Sub(2)]
    setup.start(claims=claims)
    setup.wait_refreshed()
    setup.write(2)
    setup.mirror()
    wait_until(lambda: setup.world.got(1) == [1, 2], timeout=10, what="sub 1")
    setup.wait_refreshed()
    assert setup.world.got(2) == []
    assert set(setup.fanout.status()) == {"1"} and claims.held == {1}


def test_a_subscription_taken_over_goes_on_from_its_saved_cursor(setup):
    claims = Claims(others={1})
    setup.world.subscriptions = [Sub(1)]
    setup.start(claims=claims)
    setup.wait_refreshed()
    setup.write(3)
    setup.mirror()
    # The worker that held it delivered 1..2, saved its cursor, and died.
    setup.cursors.save("webhook:1", 2)
    with claims.lock:
        claims.others.clear()
    wait_until(lambda: setup.world.got(1) == [3], timeout=10, what="3 alone")
    setup.write(1)
    setup.mirror()
    wait_until(lambda: setup.world.got(1) == [3, 4], timeout=10, what="then 4")


def test_deliveries_stop_when_their_claims_are_lost(setup):
    claims = Claims()
    setup.world.subscriptions = [Sub(1)]
    setup.start(claims=claims)
    wait_until(lambda: "1" in setup.fanout.status(), timeout=10, what="delivering")
    with claims.lock:
        claims.lost = True  # the session ended; another worker took it
        claims.others.add(1)
    wait_until(lambda: not setup.fanout.status(), timeout=10, what="stopped")
    setup.write(1)
    setup.mirror()
    setup.wait_refreshed()
    assert setup.world.got(1) == []
    setup.fanout.stop()
    assert claims.closed
