"""Collatz over ZeroMQ: the broker, the workers, the API's client, their frames.

``python -m workers.collatz.broker`` and ``python -m workers.collatz.worker``
run the two daemons; ``client.py`` is what the web process uses; the maths
is ``core.collatz``.
"""
