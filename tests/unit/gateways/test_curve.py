"""CURVE for the ZeroMQ sockets: the key files, the secure default, who gets in."""

import logging
import stat

import pytest
import zmq

from api.cli import main as cli
from core.settings import Settings
from gateways import curve
from tests.support.processes import free_port


@pytest.fixture
def keys(tmp_path):
    """A folder of keys made as ``python -m api zmq-keys`` makes them."""
    folder = tmp_path / "keys"
    curve.make_keys(folder)
    return folder


def settings(**env) -> Settings:
    return Settings.from_env({key.upper(): str(value) for key, value in env.items()})


@pytest.mark.parametrize(
    "endpoint, local",
    [
        ("tcp://127.0.0.1:5555", True),
        ("tcp://127.8.9.10:5555", True),
        ("tcp://localhost:5555", True),
        ("tcp://[::1]:5555", True),
        ("tcp://127.0.0.1:*", True),
        ("ipc:///tmp/broker", True),
        ("inproc://broker", True),
        ("tcp://*:5555", False),
        ("tcp://0.0.0.0:5555", False),
        ("tcp://[::]:5555", False),
        ("tcp://eth0:5555", False),
        ("tcp://broker-host:5560", False),
        ("tcp://10.0.0.5:5560", False),
        ("tcp://127.0.0.1;10.0.0.5:5560", False),
        ("epgm://eth0;239.192.1.1:5555", False),
        ("tcp://[::1:5555", False),
    ],
)
def test_which_endpoints_stay_on_this_machine(endpoint, local):
    assert curve.endpoint_is_local(endpoint) is local


def test_a_server_beyond_loopback_without_keys_refuses_to_start():
    endpoints = {"COLLATZ_FRONTEND": "tcp://127.0.0.1:5555"}
    endpoints["COLLATZ_BACKEND"] = "tcp://*:5560"
    with pytest.raises(curve.CurveError) as refused:
        curve.server_keys(settings(), curve.BROKER, endpoints)
    message = str(refused.value)
    assert message.startswith("COLLATZ_BACKEND=tcp://*:5560 is beyond loopback")
    assert "COLLATZ_FRONTEND" not in message
    assert "python -m api zmq-keys DIR" in message and "ZMQ_AUTH=off" in message


def test_without_keys_loopback_and_zmq_auth_off_need_none():
    local = {"PUSH_PUB_ENDPOINT": "tcp://127.0.0.1:5556"}
    beyond = {"PUSH_PUB_ENDPOINT": "tcp://0.0.0.0:5556"}
    assert curve.server_keys(settings(), curve.PUB, local) is None
    assert curve.server_keys(settings(zmq_auth="off"), curve.PUB, beyond) is None
    assert curve.client_keys(settings(), curve.SUBSCRIBER) is None


def test_zmq_auth_off_turns_curve_off_even_with_keys(keys):
    off = settings(zmq_auth="off", zmq_keys_dir=keys)
    assert curve.server_keys(off, curve.PUB, {"X": "tcp://*:1"}) is None
    assert curve.client_keys(off, curve.API) is None


def test_zmq_auth_takes_on_or_off():
    with pytest.raises(curve.CurveError, match="ZMQ_AUTH must be on or off"):
        curve.client_keys(settings(zmq_auth="yes"), curve.API)


def test_each_process_reads_its_own_files(keys):
    on = settings(zmq_keys_dir=keys)
    broker = curve.server_keys(on, curve.BROKER, {"X": "tcp://*:1"})
    pub = curve.server_keys(on, curve.PUB, {"X": "tcp://*:1"})
    api = curve.client_keys(on, curve.API)
    worker = curve.client_keys(on, curve.WORKER)
    subscriber = curve.client_keys(on, curve.SUBSCRIBER)
    assert api.server == worker.server == broker.public
    assert subscriber.server == pub.public
    assert len({broker.secret, pub.secret, api.secret, worker.secret}) == 4
    assert zmq.curve_public(api.secret) == api.public
    assert zmq.auth.load_certificates(keys / "collatz-clients") == {api.public: True}
    assert zmq.auth.load_certificates(keys / "collatz-workers") == {worker.public: True}
    assert zmq.auth.load_certificates(keys / "push-subscribers") == {
        subscriber.public: True
    }


def test_a_missing_key_file_is_named(keys):
    (keys / "collatz-worker.key_secret").unlink()
    with pytest.raises(curve.CurveError) as missing:
        curve.client_keys(settings(zmq_keys_dir=keys), curve.WORKER)
    assert str(keys / "collatz-worker.key_secret") in str(missing.value)
    assert "zmq-keys" in str(missing.value)


def test_a_public_key_file_is_no_secret_key(keys):
    (keys / "push-pub.key_secret").write_text((keys / "push-pub.key").read_text())
    with pytest.raises(curve.CurveError, match="holds no secret key"):
        curve.server_keys(settings(zmq_keys_dir=keys), curve.PUB, {})


def test_a_secret_readable_by_others_is_warned_about(keys, caplog):
    (keys / "api.key_secret").chmod(0o644)
    curve.client_keys(settings(zmq_keys_dir=keys), curve.API)
    assert "api.key_secret is readable by other users" in caplog.text


def test_secret_files_are_private_and_a_second_run_keeps_every_key(keys):
    secrets = sorted(keys.glob("*.key_secret"))
    assert [p.name for p in secrets] == [
        "api.key_secret",
        "collatz-broker.key_secret",
        "collatz-worker.key_secret",
        "push-pub.key_secret",
        "subscriber.key_secret",
    ]
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    before = {p: p.read_bytes() for p in keys.rglob("*") if p.is_file()}
    assert curve.make_keys(keys) == []
    assert {p: p.read_bytes() for p in keys.rglob("*") if p.is_file()} == before
    assert not [p for p in keys.iterdir() if p.name.startswith("tmp")]


def test_a_removed_pair_is_made_again_alone(keys):
    old = (keys / "collatz-workers" / "collatz-worker.key").read_bytes()
    (keys / "collatz-worker.key_secret").unlink()
    (keys / "collatz-workers" / "collatz-worker.key").unlink()
    made = curve.make_keys(keys)
    assert made == [
        keys / "collatz-worker.key_secret",
        keys / "collatz-workers" / "collatz-worker.key",
    ]
    assert (keys / "collatz-workers" / "collatz-worker.key").read_bytes() != old


def test_the_command_makes_the_keys_and_says_where_each_process_reads(tmp_path, capsys):
    assert cli(["zmq-keys", str(tmp_path / "k")]) == 0
    out = capsys.readouterr().out
    assert f"made {tmp_path / 'k' / 'collatz-broker.key_secret'}" in out
    assert f"ZMQ_KEYS_DIR={tmp_path / 'k'}" in out
    assert "collatz worker  collatz-worker.key_secret, collatz-broker.key" in out
    assert cli(["zmq-keys", str(tmp_path / "k")]) == 0
    assert "nothing made" in capsys.readouterr().out


# -- a guarded socket, in this process ---------------------------------------


@pytest.fixture
def guarded(keys):
    """A ROUTER echo server guarded like the broker's frontend; its endpoint."""
    context = zmq.Context()
    server_keys = curve.server_keys(
        settings(zmq_keys_dir=keys), curve.BROKER, {"X": "tcp://*:1"}
    )
    gate = curve.Gate(context, server_keys)
    sock = context.socket(zmq.ROUTER)
    sock.linger = 0
    gate.guard(sock, curve.API.admitted_by)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    sock.bind(endpoint)
    yield sock, endpoint
    sock.close()
    gate.stop()
    context.term()


def _request(endpoint, keys=None, timeout=1.0):
    """What a REQ socket with ``keys`` gets back for b"hello", or None."""
    context = zmq.Context.instance()
    sock = context.socket(zmq.REQ)
    sock.linger = 0
    if keys is not None:
        keys.apply(sock)
    sock.connect(endpoint)
    try:
        # A refused handshake leaves a REQ socket no peer, and a send without
        # one would wait for ever.
        if not sock.poll(timeout * 1000, zmq.POLLOUT):
            return None
        try:
            sock.send(b"hello", zmq.NOBLOCK)
        except zmq.Again:
            return None
        return sock.recv() if sock.poll(timeout * 1000) else None
    finally:
        sock.close()


def _echo(sock, timeout=1.0):
    if sock.poll(timeout * 1000):
        sock.send_multipart(sock.recv_multipart())


def test_only_an_admitted_key_gets_through(guarded, keys, tmp_path, caplog):
    sock, endpoint = guarded
    caplog.set_level(logging.WARNING, "gateways.curve")
    api = curve.client_keys(settings(zmq_keys_dir=keys), curve.API)
    worker = curve.client_keys(settings(zmq_keys_dir=keys), curve.WORKER)
    other_folder = tmp_path / "other"
    curve.make_keys(other_folder)
    stranger = curve.client_keys(settings(zmq_keys_dir=other_folder), curve.API)
    # A stranger's key, with the right server key: refused by the ZAP handler.
    forged = stranger._replace(server=api.server)

    assert _request(endpoint, worker) is None  # admitted on the backend only
    assert _request(endpoint, forged) is None
    assert _request(endpoint, stranger, timeout=0.3) is None  # wrong server key
    assert _request(endpoint, None, timeout=0.3) is None  # no CURVE at all
    assert sock.poll(0) == 0  # nothing reached the server
    denied = [r.getMessage() for r in caplog.records]
    assert any(worker.public.decode() in line for line in denied)
    assert any(forged.public.decode() in line for line in denied)

    import threading

    echo = threading.Thread(target=_echo, args=(sock,))
    echo.start()
    assert _request(endpoint, api) == b"hello"
    echo.join()
