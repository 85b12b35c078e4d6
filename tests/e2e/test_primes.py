"""Against real gunicorn: concurrent overlapping batches, all or nothing."""

import random
import threading

import requests

from core.primality import is_prime

BATCHES = 12
PRIVATE = 200  # numbers only one batch holds: a loser's must stay unstored
POOL = 400  # numbers the batches draw their overlaps from...
SHARED = 25  # ...this many each: some pairs overlap, some do not


def primes_from(start: int, count: int) -> list:
    found, n = [], start
    while len(found) < count:
        if is_prime(n):
            found.append(n)
        n += 1
    return found


def make_batches(rng: random.Random) -> list:
    # Around 2**63, where the stored representation changes sign.
    numbers = primes_from(2**63 - 40_000, BATCHES * PRIVATE + POOL)
    rng.shuffle(numbers)
    pool = numbers[BATCHES * PRIVATE :]
    batches = []
    for i in range(BATCHES):
        batch = numbers[i * PRIVATE : (i + 1) * PRIVATE] + rng.sample(pool, SHARED)
        rng.shuffle(batch)
        batches.append(batch)
    return batches


def post_together(url: str, batches: list) -> list:
    """POST every batch from its own thread, released at the same moment."""
    start = threading.Barrier(len(batches))
    results = [None] * len(batches)

    def send(i):
        start.wait()
        body = {"primes": batches[i]}
        results[i] = requests.post(url + "/primes", json=body, timeout=60)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def stored(url: str) -> list:
    numbers, next_url = [], "/primes?limit=1000"
    while next_url:
        page = requests.get(url + next_url, timeout=30).json()
        numbers += page["items"]
        next_url = page["next"]
    return numbers


def test_overlapping_batches_never_both_win_and_losers_store_nothing(live_server):
    server = live_server(workers=3)
    batches = make_batches(random.Random(6))
    pairs = [(a, b) for i, a in enumerate(batches) for b in batches[i + 1 :]]
    assert any(set(a) & set(b) for a, b in pairs)  # so someone must lose
    assert any(not set(a) & set(b) for a, b in pairs)  # so several can win

    results = post_together(server.url, batches)

    statuses = [r.status_code for r in results]
    assert set(statuses) <= {201, 409}, statuses
    winners = [b for b, r in zip(batches, results) if r.status_code == 201]
    losers = [(b, r.json()) for b, r in zip(batches, results) if r.status_code == 409]
    assert winners and losers

    # The table holds exactly the union of the winners' batches...
    won = set()
    for batch in winners:
        assert won.isdisjoint(batch), "two overlapping batches both succeeded"
        won.update(batch)
    numbers = stored(server.url)
    assert numbers == sorted(won)

    # ...so no loser left a partial write, and each lost to numbers a winner holds.
    for batch, problem in losers:
        duplicates = problem["duplicates"]
        assert duplicates
        assert {d["number"] for d in duplicates} <= won
        assert all(batch[d["index"]] == d["number"] for d in duplicates)
    assert "Traceback" not in server.log()


def test_the_seed_scenario_over_http(live_server):
    server = live_server(workers=1)
    url = server.url

    assert requests.get(url + "/supply_primes", timeout=5).json() == {
        "response": "prime numbers insert API"
    }
    body = {"primes": [11, 13, 15]}
    first = requests.post(url + "/supply_primes", json=body, timeout=5)
    assert first.status_code == 422
    assert first.json()["not_prime"] == [{"index": 2, "number": 15}]
    assert (
        requests.post(
            url + "/supply_primes", json={"primes": [13]}, timeout=5
        ).status_code
        == 201
    )
    conflict = requests.post(url + "/primes", json={"primes": [29, 13, 67]}, timeout=5)
    assert conflict.status_code == 409
    assert conflict.headers["Content-Type"] == "application/problem+json"
    assert stored(url) == [13]
