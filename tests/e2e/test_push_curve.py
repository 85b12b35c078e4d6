"""End to end: with CURVE keys, only an admitted SUB client reads the change stream;
a PUB socket bound beyond loopback without keys does not start."""

import time

import pytest

from core.settings import Settings
from gateways import curve
from tests.support.processes import free_port
from tests.support.push_clients import Notes


def _keys(folder, client=curve.SUBSCRIBER):
    return curve.client_keys(Settings.from_env({"ZMQ_KEYS_DIR": str(folder)}), client)


def test_a_sub_without_the_key_receives_no_event(
    tmp_path, live_server, push_worker, subscribers
):
    keys = tmp_path / "keys"
    curve.make_keys(keys)
    other = tmp_path / "other"
    curve.make_keys(other)
    notes = Notes(live_server().url)
    worker = push_worker({"ZMQ_KEYS_DIR": str(keys)})
    admitted = subscribers(worker.pub_endpoint, b"note.", _keys(keys))
    outsiders = [
        subscribers(worker.pub_endpoint, b"note.created"),  # no CURVE
        # Its own key and the PUB's public key (no secret): refused by ZAP.
        subscribers(
            worker.pub_endpoint,
            b"note.updated",
            _keys(other)._replace(server=_keys(keys).server),
        ),
        # The API's key is admitted by the broker, not by the PUB socket.
        subscribers(
            worker.pub_endpoint,
            b"note.deleted",
            _keys(keys, curve.API)._replace(server=_keys(keys).server),
        ),
    ]
    worker.wait_subscribed("note.")
    made = [notes.create(f"n{i}") for i in range(3)]
    notes.delete(made[0]["id"])
    events = admitted.wait_for(lambda got: len(got) >= 4, "four events")
    assert [e["new_val"] for e in events[:3]] == made
    time.sleep(1)  # the outsiders had time to get them too, had they been let in
    for sub in outsiders:
        assert sub.poll() == []
    # Their subscriptions never reached the worker either.
    assert worker.health()["pub_topics"] == ["note."]
    log = worker.log()
    assert "refused a ZeroMQ client on push-subscribers" in log
    assert _keys(keys, curve.API).public.decode() in log
    assert f"PUB socket on {worker.pub_endpoint} (CURVE keys in {keys})" in log


def test_a_pub_socket_beyond_loopback_needs_keys(tmp_path, push_worker):
    endpoint = f"tcp://0.0.0.0:{free_port()}"
    with pytest.raises(RuntimeError) as exited:
        push_worker({"PUSH_PUB_ENDPOINT": endpoint, "ZMQ_KEYS_DIR": ""})
    assert (
        f"PUSH_PUB_ENDPOINT={endpoint} is beyond loopback and ZMQ_KEYS_DIR is empty"
    ) in str(exited.value)
    keys = tmp_path / "keys"
    curve.make_keys(keys)
    worker = push_worker({"PUSH_PUB_ENDPOINT": endpoint, "ZMQ_KEYS_DIR": str(keys)})
    assert f"PUB socket on {endpoint} (CURVE keys in {keys})" in worker.log()
