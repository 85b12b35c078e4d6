"""The collatz worker: a broker that refuses its handshake is not waited on for ever."""

import logging
import threading

import zmq

from tests.support.processes import wait_until
from workers.collatz.worker import Worker


def test_a_refused_handshake_leads_to_reconnects_not_a_hang(caplog):
    context = zmq.Context()
    public, secret = zmq.curve_keypair()
    broker = context.socket(zmq.ROUTER)  # CURVE: a worker without keys is refused
    broker.curve_server = True
    broker.curve_publickey, broker.curve_secretkey = public, secret
    port = broker.bind_to_random_port("tcp://127.0.0.1")
    worker = Worker(f"tcp://127.0.0.1:{port}", heartbeat=0.5, liveness=3)
    worker_context = zmq.Context()

    def serve():
        try:
            worker.run(worker_context)
        except zmq.ZMQError:
            pass  # its context was ended

    running = threading.Thread(target=serve, daemon=True)
    with caplog.at_level(logging.WARNING, logger="workers.collatz.worker"):
        running.start()
        # The refusal leaves it no peer well before its first heartbeat is
        # due; the heartbeats are dropped and the silence is noticed.
        wait_until(lambda: "broker silent" in caplog.text, timeout=10)
    # Ending its context ends the worker (its socket raises ETERM).
    ending = threading.Thread(target=worker_context.term, daemon=True)
    ending.start()
    running.join(10)
    ending.join(10)
    assert not running.is_alive() and not ending.is_alive()
    context.destroy(linger=0)
