"""The API's collatz client: every request ends by its deadline."""

import time

import pytest
import zmq

from db.errors import Unavailable
from gateways.collatz import CollatzClient
from tests.support.processes import free_port


def test_a_request_with_no_peer_to_send_to_ends_at_its_deadline():
    endpoint = f"tcp://127.0.0.1:{free_port()}"  # nobody listens
    client = CollatzClient(endpoint, timeout=0.5)
    client._give_back(client._socket())  # makes the process's context
    # A REQ socket's send waits while it has no peer. A refused CURVE
    # handshake leaves the client's socket so, for ever; IMMEDIATE does it
    # here without depending on when libzmq drops the refused connection.
    stuck = client._context.socket(zmq.REQ)
    stuck.setsockopt(zmq.LINGER, 0)
    stuck.setsockopt(zmq.IMMEDIATE, 1)
    stuck.connect(endpoint)
    client._idle = [stuck]
    started = time.monotonic()
    with pytest.raises(Unavailable, match="did not answer within 0.5 s"):
        client.longest(1000)
    assert time.monotonic() - started < 0.5 + 0.5
    assert stuck.closed  # not pooled again
    client.close()
