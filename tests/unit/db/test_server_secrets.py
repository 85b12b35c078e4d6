"""Server secrets: made once, shared by every process of the database."""

import threading

from core import tickets
from db.server_secrets import ServerSecrets


def test_the_secret_is_made_once_and_shared_by_every_process(database):
    first = ServerSecrets(database).get(tickets.SECRET_NAME)
    assert len(first) == 32
    assert ServerSecrets(database).get(tickets.SECRET_NAME) == first
    assert ServerSecrets(database).get("another") != first


def test_processes_that_ask_at_once_agree_on_one_secret(database):
    got = []
    barrier = threading.Barrier(6)

    def ask():
        barrier.wait()
        got.append(ServerSecrets(database).get(tickets.SECRET_NAME))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(got) == 6 and len(set(got)) == 1
