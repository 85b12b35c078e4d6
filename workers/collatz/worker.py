"""A collatz worker: takes ranges of starts from the broker, answers the longest chain.

``python -m workers.collatz.worker`` connects a DEALER socket to
``COLLATZ_BACKEND``, heartbeats while it computes, and reconnects with back-off
when the broker goes silent. Design: docs/design/collatz.md#the-worker
"""

import argparse
import logging
import signal
import sys
import time
from typing import List
from typing import Optional
from typing import Tuple

import zmq

from core import collatz
from core.logs import configure_logging
from core.settings import Settings
from gateways import collatz_protocol as proto
from gateways import curve

log = logging.getLogger("workers.collatz.worker")

MAX_BACKOFF = 8.0


class Worker:
    """One worker's socket, memo and heartbeat clock.

    Args:
        endpoint: The broker's backend endpoint to connect to.
        heartbeat: Seconds between heartbeats (the broker must use the same).
        liveness: Heartbeats the broker may miss before the worker reconnects.
        memo_size: Numbers below this have their chain length memoized.
        keys: CURVE keys to connect with (None: no CURVE).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        heartbeat: float = proto.HEARTBEAT_INTERVAL,
        liveness: int = proto.HEARTBEAT_LIVENESS,
        memo_size: int = collatz.DEFAULT_MEMO_SIZE,
        keys: Optional[curve.ClientKeys] = None,
    ):
        self.endpoint = endpoint
        self.keys = keys
        self.heartbeat = heartbeat
        self.liveness = liveness
        self.memo = collatz.new_memo(memo_size)
        self.socket: Optional[zmq.Socket] = None
        self._next_heartbeat = 0.0

    def run(self, context: zmq.Context) -> None:
        """Serve the broker until interrupted (KeyboardInterrupt)."""
        backoff = self.heartbeat
        self._connect(context)
        try:
            heard = time.monotonic()
            while True:
                wait = max(0.0, self._next_heartbeat - time.monotonic())
                if self.socket.poll(wait * 1000, zmq.POLLIN):
                    frames = self.socket.recv_multipart()
                    heard = time.monotonic()
                    backoff = self.heartbeat
                    if frames[0] == proto.TASK:
                        self._on_task(frames[1:])
                        # The broker's heartbeats wait unread during a long
                        # range: silence while computing is not its death.
                        heard = time.monotonic()
                    elif frames[0] != proto.HEARTBEAT:
                        log.warning(
                            "unknown command %r from the broker", frames[0][:20]
                        )
                elif time.monotonic() - heard > self.heartbeat * self.liveness:
                    log.warning(
                        "broker silent for %.1fs; reconnecting in %.1fs%s",
                        time.monotonic() - heard,
                        backoff,
                        " (does it take this worker's CURVE key?)"
                        if self.keys is not None
                        else "",
                    )
                    self.socket.close(linger=0)
                    self.socket = None
                    time.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    self._connect(context)
                    heard = time.monotonic()
                self._heartbeat_if_due()
        finally:
            if self.socket is not None:
                self.socket.close(linger=0)

    def _connect(self, context: zmq.Context) -> None:
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if self.keys is not None:
            self.keys.apply(self.socket)
        self.socket.connect(self.endpoint)
        self._send(proto.READY)
        self._next_heartbeat = time.monotonic() + self.heartbeat
        log.info(
            "collatz worker ready on %s (%s)",
            self.endpoint,
            "CURVE" if self.keys is not None else "no CURVE",
        )

    def _heartbeat_if_due(self) -> None:
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self._send(proto.HEARTBEAT)
            self._next_heartbeat = now + self.heartbeat

    def _send(self, *frames: bytes) -> None:
        # A DEALER's send waits for a peer, and a broker that refused this
        # worker's handshake leaves it none: the message is dropped, and the
        # broker's silence leads to a reconnect instead of a wait for ever.
        try:
            self.socket.send_multipart(list(frames), zmq.NOBLOCK)
        except zmq.Again:
            log.debug("no broker to send %r to", frames[0])

    def _on_task(self, args: List[bytes]) -> None:
        try:
            task_id, lo, hi = (proto.number(a) for a in args)
            if not 1 <= lo <= hi:
                raise ValueError(f"empty range {lo}..{hi}")
        except ValueError as ex:
            log.warning("malformed task %r: %s", args[:3], ex)
            self._send(proto.FAILED, args[0] if args else b"", b"malformed task")
            return
        started = time.monotonic()
        try:
            start, length = self.compute(lo, hi)
        except MemoryError:
            log.exception("range %d..%d does not fit in memory", lo, hi)
            self._send(proto.FAILED, args[0], b"out of memory")
            return
        log.info(
            "range %d..%d: %d with %d terms (%.3fs)",
            lo,
            hi,
            start,
            length,
            time.monotonic() - started,
        )
        result = proto.numbers(task_id, start, length)
        self._send(proto.RESULT, *result)

    def compute(self, lo: int, hi: int) -> Tuple[int, int]:
        """The longest chain in ``lo..hi``, heartbeating between slices of the range."""
        target = self.heartbeat / 4  # seconds per slice
        size, best = 10_000, None
        while lo <= hi:
            end = min(hi, lo + size - 1)
            started = time.monotonic()
            result = collatz.longest(lo, end, self.memo)
            best = result if best is None else collatz.merge([best, result])
            elapsed = max(time.monotonic() - started, 1e-4)
            # Grow or shrink the next slice towards ``target`` seconds.
            size = max(1_000, min(size * 4, int(size * target / elapsed)))
            lo = end + 1
            self._heartbeat_if_due()
        return best


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workers.collatz.worker", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--backend",
        default=settings.collatz_backend,
        help="the broker's endpoint for workers (COLLATZ_BACKEND)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=proto.HEARTBEAT_INTERVAL,
        help="seconds between heartbeats; the broker must use the same",
    )
    parser.add_argument(
        "--liveness",
        type=int,
        default=proto.HEARTBEAT_LIVENESS,
        help="heartbeats the broker may miss before reconnecting",
    )
    parser.add_argument(
        "--memo-size",
        type=int,
        default=collatz.DEFAULT_MEMO_SIZE,
        help="numbers below this have their chain length memoized (2 bytes each)",
    )
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: Optional[List[str]] = None) -> int:
    """Run a worker until SIGINT or SIGTERM."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    args = build_parser(settings).parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        keys = curve.client_keys(settings, curve.WORKER)
    except curve.CurveError as ex:
        log.error("collatz worker cannot start: %s", ex)
        return 2
    worker = Worker(
        args.backend,
        heartbeat=args.heartbeat,
        liveness=args.liveness,
        memo_size=args.memo_size,
        keys=keys,
    )
    context = zmq.Context()
    try:
        worker.run(context)
    except KeyboardInterrupt:
        log.info("collatz worker stopping")
    finally:
        context.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
