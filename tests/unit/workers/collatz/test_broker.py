"""The collatz broker's checks of workers, driven message by message (no sockets).

A result counts only from the worker holding its range and only once checked;
a range whose holders stay silent goes to more workers.
"""

import json
import time

from core import collatz
from gateways import collatz_protocol as proto
from workers.collatz.broker import Broker


class Wire:
    """Stands for a ROUTER socket: keeps what the broker sends."""

    def __init__(self):
        self.sent = []

    def send_multipart(self, frames, flags=0):
        self.sent.append(frames)

    def take(self):
        sent, self.sent = self.sent, []
        return sent


def make_broker(**kwargs) -> Broker:
    broker = Broker("inproc://clients", "inproc://workers", max_n=10**8, timeout=30)
    broker.__dict__.update(kwargs)
    broker.frontend, broker.backend = Wire(), Wire()
    return broker


def join(broker: Broker, *names: bytes) -> None:
    for name in names:
        broker.on_worker([name, proto.READY])


def ask(broker: Broker, n: int, client: bytes = b"client") -> None:
    broker.on_client([client, b"", proto.API, proto.LONGEST, str(n).encode()])
    broker._dispatch()


def given_tasks(broker: Broker) -> dict:
    """The TASK frames sent since last asked: worker -> (task id, lo, hi)."""
    tasks = {}
    for frames in broker.backend.take():
        if frames[1] == proto.TASK:
            tasks[frames[0]] = tuple(int(f) for f in frames[2:])
    return tasks


def answer(broker: Broker, worker: bytes, task_id: int, start: int, length: int):
    broker.on_worker([worker, proto.RESULT] + proto.numbers(task_id, start, length))
    broker._dispatch()


def answer_right(broker: Broker, worker: bytes, task) -> None:
    task_id, lo, hi = task
    answer(broker, worker, task_id, *collatz.longest(lo, hi))


def replies(broker: Broker) -> list:
    return [frames[2:] for frames in broker.frontend.take()]


def ok(n: int) -> list:
    return [proto.API, proto.OK] + proto.numbers(*collatz.longest_upto(n))


def stats(broker: Broker) -> dict:
    return json.loads(broker._stats())


def test_a_correct_result_from_the_holder_answers_and_is_cached():
    broker = make_broker()
    join(broker, b"w1")
    ask(broker, 1000)
    (task,) = given_tasks(broker).values()
    answer_right(broker, b"w1", task)
    assert replies(broker) == [ok(1000)]
    assert broker.cache[1000] == (871, 179)


def test_a_result_from_a_worker_that_does_not_hold_the_range_is_ignored():
    broker = make_broker()
    join(broker, b"holder", b"other")
    ask(broker, 1000)
    tasks = given_tasks(broker)
    assert list(tasks) == [b"holder"]
    task_id = tasks[b"holder"][0]
    # The right answer, even, but from a worker that was never given it.
    answer(broker, b"other", task_id, 871, 179)
    answer(broker, b"stranger", task_id, 871, 179)
    assert replies(broker) == [] and broker.cache == {}
    answer_right(broker, b"holder", tasks[b"holder"])
    assert replies(broker) == [ok(1000)]


def test_a_made_up_result_is_never_cached_and_its_worker_is_dropped():
    broker = make_broker()
    join(broker, b"liar", b"honest")
    ask(broker, 10**6)
    tasks = given_tasks(broker)
    liar_task = tasks[b"liar"]
    # The audit's fake answer.
    answer(broker, b"liar", liar_task[0], 4242, 99999)
    assert b"liar" not in broker.workers and stats(broker)["banned"] == 1
    # Dropped for good: its heartbeats do not bring it back.
    broker.on_worker([b"liar", proto.HEARTBEAT])
    broker.on_worker([b"liar", proto.READY])
    assert b"liar" not in broker.workers
    # Its range goes to the honest worker, which does every range.
    while not broker.cache:
        answer_right(broker, b"honest", tasks[b"honest"])
        tasks = given_tasks(broker)
    assert replies(broker) == [ok(10**6)]
    assert broker.cache == {10**6: (837799, 525)}


def test_a_wrong_length_is_a_bad_result(caplog):
    broker = make_broker()
    join(broker, b"w1", b"w2")
    ask(broker, 1000)
    task_id = given_tasks(broker)[b"w1"][0]
    answer(broker, b"w1", task_id, 871, 180)
    assert b"w1" not in broker.workers
    assert "the chain of 871 has 179 terms, not 180" in caplog.text
    assert list(given_tasks(broker)) == [b"w2"]


def test_a_true_but_short_chain_is_caught_by_the_random_starts(caplog):
    broker = make_broker()
    join(broker, b"lazy", b"w2")
    ask(broker, 10**6)
    task_id, lo, hi = given_tasks(broker)[b"lazy"]
    # A power of two has the shortest chain of its size: the claim is true
    # of that start, and nearly every other start of the range beats it.
    start = 1 << hi.bit_length() - 1
    assert lo <= start <= hi
    answer(broker, b"lazy", task_id, start, collatz.chain_length(start))
    assert b"lazy" not in broker.workers
    assert "in the range beats it" in caplog.text
    assert broker.cache == {}


def test_a_start_outside_the_range_is_a_bad_result(caplog):
    broker = make_broker()
    join(broker, b"w1")
    ask(broker, 10**6)
    task_id, lo, hi = given_tasks(broker)[b"w1"]
    answer(broker, b"w1", task_id, hi + 1, collatz.chain_length(hi + 1))
    assert b"w1" not in broker.workers
    assert f"start {hi + 1} is outside {lo}..{hi}" in caplog.text


def test_silent_holders_do_not_starve_a_request():
    broker = make_broker(task_timeout=1.0)
    fakes = [b"fake%02d" % i for i in range(16)]
    join(broker, *fakes)  # first: least recently used, so first given work
    join(broker, b"real")
    ask(broker, 1000)
    assert list(given_tasks(broker)) == [b"fake00"]
    now = time.monotonic()
    answered, rounds = [], 0
    while not answered:
        rounds += 1
        now += 2.0  # past every timeout
        broker._expire_tasks(now)
        broker._dispatch()
        tasks = given_tasks(broker)
        assert tasks, "the range went to nobody"
        if b"real" in tasks:
            answer_right(broker, b"real", tasks[b"real"])
        answered = replies(broker)
    assert answered == [ok(1000)]
    # Given to 2, then 4, 8 more workers: the real one had it by round 4.
    assert rounds <= 4


def test_silent_holders_of_many_ranges_lose_them_to_the_live_worker():
    broker = make_broker(task_timeout=1.0)
    join(broker, *[b"fake%02d" % i for i in range(16)], b"real")
    ask(broker, 10**6)
    now = time.monotonic()
    for _ in range(200):
        tasks = given_tasks(broker)
        if b"real" in tasks:
            answer_right(broker, b"real", tasks[b"real"])
        elif not broker.cache:
            now += 2.0
            broker._expire_tasks(now)
            broker._dispatch()
    assert replies(broker) == [ok(10**6)]
    assert stats(broker)["busy"] == 16  # the fakes still hold their ranges


def test_a_slow_holder_keeps_its_range_when_it_goes_to_more_workers():
    broker = make_broker(task_timeout=1.0)
    join(broker, b"slow", b"idle")
    ask(broker, 1000)
    task = given_tasks(broker)[b"slow"]
    broker._expire_tasks(time.monotonic() + 2.0)
    broker._dispatch()
    assert given_tasks(broker) == {b"idle": task}
    # Both hold it: the first checked answer wins, the second is not an error.
    answer_right(broker, b"slow", task)
    assert replies(broker) == [ok(1000)]
    answer_right(broker, b"idle", task)
    assert set(broker.idle) == {b"slow", b"idle"} and broker.banned == {}


def test_a_range_is_timed_out_by_the_slowest_recent_speed():
    broker = make_broker(task_timeout=1.0)
    task = type("T", (), {"lo": 1, "hi": 400_000})
    # No result yet: DEFAULT_RATE (100,000 starts/s) with slack 4.
    assert broker._task_timeout(task) == 16.0
    broker.rates.extend([2_000_000, 400_000, 1_000_000])
    assert broker._task_timeout(task) == 4.0
    broker.rates.append(10**9)
    assert broker._task_timeout(task) == 4.0
    task.hi = 1000
    assert broker._task_timeout(task) == 1.0


def test_dead_holders_do_not_fail_the_request_but_failed_reports_do():
    broker = make_broker()
    join(broker, b"w1")
    ask(broker, 1000)
    for i in range(5):  # more than MAX_ATTEMPTS
        task = given_tasks(broker)
        broker._remove_worker(broker.workers[list(task)[0]], "heartbeat expired")
        join(broker, b"w%d" % (i + 2))
        broker._dispatch()
    assert replies(broker) == []
    for _ in range(3):
        worker, (task_id, _, _) = given_tasks(broker).popitem()
        broker.on_worker([worker, proto.FAILED, str(task_id).encode(), b"oops"])
        broker._dispatch()
    assert replies(broker) == [
        [proto.API, proto.ERR, proto.FAILED_CODE, b"workers failed n=1000 3 times"]
    ]


def test_a_malformed_result_drops_its_worker_and_frees_its_range():
    broker = make_broker()
    join(broker, b"w1", b"w2")
    ask(broker, 1000)
    task = given_tasks(broker)[b"w1"]
    broker.on_worker([b"w1", proto.RESULT, b"1", b"x", b"2"])
    broker._dispatch()
    assert b"w1" not in broker.workers
    assert given_tasks(broker) == {b"w2": task}
