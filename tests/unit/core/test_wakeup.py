"""Commit nudges (core/wakeup.py) and the SQL change stream that waits on them."""

import os
import resource
import threading
import time

import pytest

from core.wakeup import Listener
from core.wakeup import Notifier
from core.wakeup import parse_address
from db.notes.sql import SqlNotesStore
from tests.support.processes import free_udp_port


def test_addresses_parse_and_bad_ones_are_refused():
    assert parse_address("127.0.0.1:5557") == ("127.0.0.1", 5557)
    assert parse_address("[::1]:80") == ("::1", 80)
    assert parse_address("") is None
    for bad in ("127.0.0.1", ":80", "host:0", "host:65536", "host:http"):
        with pytest.raises(ValueError, match="PUSH_WAKE_ADDRESS"):
            parse_address(bad)


def test_a_nudge_ends_the_wait_and_many_are_consumed_at_once():
    listener = Listener(f"127.0.0.1:{free_udp_port()}")
    notifier = Notifier("{}:{}".format(*listener.address))
    try:
        assert listener.wait(0.01) is False
        for _ in range(5):
            notifier.notify()
        assert listener.wait(5) is True
        assert listener.wait(0.05) is False  # the five were one wake-up
    finally:
        notifier.close()
        listener.close()


def test_nudging_nobody_neither_fails_nor_blocks():
    notifier = Notifier(f"127.0.0.1:{free_udp_port()}")
    started = time.monotonic()
    for _ in range(100):
        notifier.notify()
    assert time.monotonic() - started < 1
    Notifier("").notify()  # no address: nothing to do


def test_the_change_stream_reads_a_commit_when_it_is_announced(database):
    listener = Listener(f"127.0.0.1:{free_udp_port()}")
    notifier = Notifier("{}:{}".format(*listener.address))
    writer = SqlNotesStore(database, on_commit=notifier.notify)
    # A poll interval far longer than the test: only the nudge can be in time.
    follower = SqlNotesStore(database, wakeups=listener, poll_interval=60)
    stop = threading.Event()
    seen = []

    def follow():
        for change in follower.changes(since=0, stop=stop, timeout=30):
            seen.append((change, time.monotonic()))
            stop.set()

    thread = threading.Thread(target=follow)
    thread.start()
    try:
        time.sleep(0.2)  # the follower has read the empty log and waits
        note = writer.create("announced", "")
        committed = time.monotonic()
        thread.join(10)
        assert seen, "the change was not read"
        change, read_at = seen[0]
        assert change.new.id == note.id
        assert read_at - committed < 5
    finally:
        stop.set()
        thread.join(10)
        notifier.close()
        listener.close()


def test_a_stopped_stream_ends_while_it_waits_for_nudges(database):
    listener = Listener(f"127.0.0.1:{free_udp_port()}")
    follower = SqlNotesStore(database, wakeups=listener, poll_interval=60)
    stop = threading.Event()
    done = threading.Event()

    def follow():
        for _ in follower.changes(since=0, stop=stop):
            pass
        done.set()

    thread = threading.Thread(target=follow)
    thread.start()
    try:
        time.sleep(0.2)
        stop.set()
        assert done.wait(5)
    finally:
        stop.set()
        thread.join(10)
        listener.close()


def test_a_listener_waits_on_a_descriptor_numbered_past_1024():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if min(soft, hard) < 1200:
        pytest.skip(f"the open-files limit ({soft}) is below 1,200")
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        listener = Listener(f"127.0.0.1:{free_udp_port()}")
        notifier = Notifier("{}:{}".format(*listener.address))
        try:
            assert listener._socket.fileno() >= 1024
            assert listener.wait(0.01) is False
            notifier.notify()
            assert listener.wait(5) is True
        finally:
            notifier.close()
            listener.close()
    finally:
        for fd in filler:
            os.close(fd)
