"""The collatz broker: clients on a ROUTER frontend, workers on a ROUTER backend.

``python -m workers.collatz.broker`` splits a request for n into ranges of
(n // 2, n] that idle workers take one at a time, checks and merges their
results, answers every client waiting for n and caches the answer; silent
workers are dropped, and a range whose holders stay silent goes to more.

Design: docs/design/collatz.md#the-broker
"""

import argparse
import collections
import json
import logging
import math
import secrets
import signal
import sys
import time
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

import zmq

from core import collatz
from core.logs import configure_logging
from core.settings import Settings
from gateways import collatz_protocol as proto
from gateways import curve

log = logging.getLogger("workers.collatz.broker")

#: Answers kept (n -> result), least recently used dropped first.
CACHE_SIZE = 10_000
#: Jobs (distinct n) in progress at once; more are refused as busy.
MAX_JOBS = 1_000
#: Ranges smaller than this are not split further (a few ms of work under PyPy).
MIN_RANGE = 50_000
#: Ranges per live worker a job is split into: spare ones balance uneven workers.
RANGES_PER_WORKER = 4
MAX_RANGES = 64
#: A range that workers report failed (FAILED) this many times fails its job.
MAX_ATTEMPTS = 3
#: Random starts of a range each result is checked against.
PROBES = 16
#: A range's timeout: this many times what it would take at the slowest of
#: the last RATE_SAMPLES checked results' speeds (starts per second), or at
#: DEFAULT_RATE before any (CPython on a busy machine does more).
TASK_SLACK = 4
RATE_SAMPLES = 16
DEFAULT_RATE = 100_000
#: Most workers a timed-out range is given to at once.
MAX_COPIES = 16
#: Dropped workers whose messages are ignored (the oldest forgotten first).
MAX_BANNED = 10_000


class Waiter:
    """A client waiting for a job: where to send the answer, how, and until when."""

    __slots__ = ("envelope", "text", "deadline")

    def __init__(self, envelope: List[bytes], text: bool, deadline: float):
        self.envelope = envelope
        self.text = text
        self.deadline = deadline


class Job:
    """The longest chain in 1..n, as ranges in progress."""

    def __init__(self, n: int):
        self.n = n
        self.waiters: List[Waiter] = []
        self.pending: Dict[int, Task] = {}
        self.results: List[Tuple[int, int]] = []


class Task:
    """One range of a job: held by workers, and queued while it wants more.

    ``holders`` maps each worker holding it to when it was given;
    ``wanted`` is how many more workers it is to be given to (queued while
    above 0); ``given`` is when the current round of holders got it.
    """

    __slots__ = ("id", "job", "lo", "hi", "failures", "timeouts")
    __slots__ += ("holders", "wanted", "given")

    def __init__(self, task_id: int, job: Job, lo: int, hi: int):
        self.id = task_id
        self.job = job
        self.lo = lo
        self.hi = hi
        self.failures = 0
        self.timeouts = 0
        self.holders: Dict[bytes, float] = {}
        self.wanted = 1
        self.given: Optional[float] = None


class Worker:
    """A worker the broker has heard from, and the task it holds (if any)."""

    __slots__ = ("identity", "expiry", "task")

    def __init__(self, identity: bytes, expiry: float):
        self.identity = identity
        self.expiry = expiry
        self.task: Optional[Task] = None


class Broker:
    """The broker's state and event loop; sockets are made by :meth:`run`.

    Args:
        frontend: Endpoint to bind for clients.
        backend: Endpoint to bind for workers.
        max_n: Largest n accepted.
        timeout: Longest a request may wait for its answer, in seconds.
        heartbeat: Seconds between heartbeats (workers must use the same).
        liveness: Heartbeats a worker may miss before it is dropped.
        task_timeout: Least time a range's holders get before it goes to
            more workers (default ``heartbeat * liveness``).
        keys: CURVE keys of both sockets (None: no CURVE).
    """

    def __init__(
        self,
        frontend: str,
        backend: str,
        *,
        max_n: int,
        timeout: float,
        heartbeat: float = proto.HEARTBEAT_INTERVAL,
        liveness: int = proto.HEARTBEAT_LIVENESS,
        task_timeout: Optional[float] = None,
        keys: Optional[curve.ServerKeys] = None,
    ):
        self.frontend_endpoint = frontend
        self.backend_endpoint = backend
        self.max_n = max_n
        self.timeout = timeout
        self.heartbeat = heartbeat
        self.liveness = liveness
        if task_timeout is None:
            task_timeout = heartbeat * liveness
        self.task_timeout = task_timeout
        self.keys = keys
        self.workers: Dict[bytes, Worker] = {}
        self.idle: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self.queue: collections.deque[Task] = collections.deque()
        self.jobs: Dict[int, Job] = {}
        self.tasks: Dict[int, Task] = {}  # every range not done yet, by id
        self.cache: collections.OrderedDict[int, Tuple[int, int]] = (
            collections.OrderedDict()
        )
        self.banned: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self.rates: collections.deque[float] = collections.deque(maxlen=RATE_SAMPLES)
        self._next_task_id = 0
        self.frontend: Optional[zmq.Socket] = None
        self.backend: Optional[zmq.Socket] = None

    # -- event loop ---------------------------------------------------------

    def run(self, context: zmq.Context) -> None:
        """Bind, then serve until interrupted (KeyboardInterrupt)."""
        self.frontend = context.socket(zmq.ROUTER)
        self.backend = context.socket(zmq.ROUTER)
        gate = None
        try:
            if self.keys is not None:
                gate = curve.Gate(context, self.keys)
            for sock in (self.frontend, self.backend):
                sock.setsockopt(zmq.LINGER, 0)
                # Sending to a peer that is gone raises instead of vanishing.
                sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            if gate is not None:
                gate.guard(self.frontend, curve.API.admitted_by)
                gate.guard(self.backend, curve.WORKER.admitted_by)
            self.frontend.bind(self.frontend_endpoint)
            self.backend.bind(self.backend_endpoint)
            log.info(
                "collatz broker: clients on %s, workers on %s (max n %d, %s)",
                self.frontend_endpoint,
                self.backend_endpoint,
                self.max_n,
                "no CURVE" if gate is None else f"CURVE keys in {self.keys.folder}",
            )
            self._loop()
        finally:
            self.frontend.close(linger=0)
            self.backend.close(linger=0)
            if gate is not None:
                gate.stop()

    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self.frontend, zmq.POLLIN)
        poller.register(self.backend, zmq.POLLIN)
        next_heartbeat = time.monotonic() + self.heartbeat
        while True:
            now = time.monotonic()
            wake = min(
                [next_heartbeat]
                + [w.deadline for job in self.jobs.values() for w in job.waiters]
            )
            events = dict(poller.poll(max(0.0, wake - now) * 1000))
            if self.backend in events:
                self._drain(self.backend, self.on_worker)
            if self.frontend in events:
                self._drain(self.frontend, self.on_client)
            now = time.monotonic()
            if now >= next_heartbeat:
                self._send_heartbeats()
                self._expire_tasks(now)
                next_heartbeat = now + self.heartbeat
            self._expire_workers(now)
            self._expire_waiters(now)
            self._dispatch()

    @staticmethod
    def _drain(sock: zmq.Socket, handle, limit: int = 1000) -> None:
        for _ in range(limit):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            handle(frames)

    # -- clients ------------------------------------------------------------

    def on_client(self, frames: List[bytes]) -> None:
        """A request on the frontend: ``[identity..., b"", body...]``."""
        try:
            split = frames.index(b"")
        except ValueError:
            log.debug("dropped a client message without an envelope delimiter")
            return
        envelope, body = frames[: split + 1], frames[split + 1 :]
        if body and body[0] == proto.API:
            self._on_api_request(envelope, body[1:])
        elif len(body) == 1:
            self._on_text_request(envelope, body[0])
        else:
            self._send_client(envelope, [b"error: send one frame: the number n"])

    def _on_text_request(self, envelope: List[bytes], frame: bytes) -> None:
        waiter = Waiter(envelope, True, time.monotonic() + self.timeout)
        n = self._parse_n(frame)
        if n is None:
            self._reply_error(waiter, proto.INVALID, self._invalid_n())
        else:
            self.submit(n, waiter)

    def _on_api_request(self, envelope: List[bytes], body: List[bytes]) -> None:
        waiter = Waiter(envelope, False, time.monotonic() + self.timeout)
        if body == [proto.PING]:
            self._send_client(envelope, [proto.API, proto.PONG, self._stats()])
        elif body[:1] == [proto.LONGEST] and len(body) in (2, 3):
            n = self._parse_n(body[1])
            if n is None:
                self._reply_error(waiter, proto.INVALID, self._invalid_n())
                return
            if len(body) == 3:
                try:
                    waiter.deadline = min(
                        waiter.deadline, time.monotonic() + proto.number(body[2]) / 1000
                    )
                except ValueError:
                    pass  # a malformed deadline: the broker's own applies
            self.submit(n, waiter)
        else:
            self._reply_error(waiter, proto.PROTOCOL, "unknown request")

    def _parse_n(self, frame: bytes) -> Optional[int]:
        try:
            n = proto.number(frame)
        except ValueError:
            return None
        return n if 1 <= n <= self.max_n else None

    def _invalid_n(self) -> str:
        return f"n must be a whole number from 1 to {self.max_n}"

    def submit(self, n: int, waiter: Waiter) -> None:
        """Answer from the cache, join the job for n, or start one."""
        cached = self.cache.get(n)
        if cached is not None:
            self.cache.move_to_end(n)
            self._reply(waiter, cached)
            return
        job = self.jobs.get(n)
        if job is None:
            if len(self.jobs) >= MAX_JOBS:
                self._reply_error(waiter, proto.BUSY, "too many requests in progress")
                return
            job = self.jobs[n] = Job(n)
            first, last = collatz.search_range(n)
            parts = min(
                math.ceil((last - first + 1) / MIN_RANGE),
                MAX_RANGES,
                RANGES_PER_WORKER * max(1, len(self.workers)),
            )
            for lo, hi in collatz.split(first, last, parts):
                task = Task(self._new_task_id(), job, lo, hi)
                job.pending[task.id] = task
                self.tasks[task.id] = task
                self.queue.append(task)
            log.info(
                "job n=%d: %d range(s), %d worker(s)",
                n,
                len(job.pending),
                len(self.workers),
            )
        job.waiters.append(waiter)

    def _new_task_id(self) -> int:
        self._next_task_id += 1
        return self._next_task_id

    def _reply(self, waiter: Waiter, result: Tuple[int, int]) -> None:
        start, length = result
        if waiter.text:
            body = [b"%d %d" % (start, length)]
        else:
            body = [proto.API, proto.OK] + proto.numbers(start, length)
        self._send_client(waiter.envelope, body)

    def _reply_error(self, waiter: Waiter, code: bytes, reason: str) -> None:
        if waiter.text:
            body = [b"error: " + reason.encode("ascii", "replace")]
        else:
            body = [proto.API, proto.ERR, code, reason.encode("ascii", "replace")]
        self._send_client(waiter.envelope, body)

    def _send_client(self, envelope: List[bytes], body: List[bytes]) -> None:
        try:
            self.frontend.send_multipart(envelope + body, zmq.NOBLOCK)
        except zmq.ZMQError as ex:
            # The client left (a lazy pirate closes its socket on timeout).
            log.debug("could not answer a client: %s", ex)

    def _stats(self) -> bytes:
        return json.dumps(
            {
                "workers": len(self.workers),
                "idle": len(self.idle),
                "busy": len(self.workers) - len(self.idle),
                "jobs": len(self.jobs),
                "queued": len(self.queue),
                "cached": len(self.cache),
                "banned": len(self.banned),
            }
        ).encode("ascii")

    def _expire_waiters(self, now: float) -> None:
        for job in list(self.jobs.values()):
            late = [w for w in job.waiters if w.deadline <= now]
            if not late:
                continue
            for waiter in late:
                self._reply_error(
                    waiter,
                    proto.TIMEOUT,
                    f"no collatz worker finished n={job.n} in time "
                    f"({len(self.workers)} worker(s) connected)",
                )
            job.waiters = [w for w in job.waiters if w.deadline > now]
            if not job.waiters:
                log.warning(
                    "job n=%d timed out with %d range(s) left", job.n, len(job.pending)
                )
                self._drop_job(job)

    def _drop_job(self, job: Job) -> None:
        """Forget a job; results of its ranges still out are ignored on arrival."""
        del self.jobs[job.n]
        self.queue = collections.deque(t for t in self.queue if t.job is not job)
        for task_id, task in job.pending.items():
            task.wanted = 0
            del self.tasks[task_id]
        job.pending.clear()

    # -- workers ------------------------------------------------------------

    def on_worker(self, frames: List[bytes]) -> None:
        """A message on the backend: ``[identity, command, args...]``."""
        if len(frames) < 2:
            return
        identity, command, args = frames[0], frames[1], frames[2:]
        if identity in self.banned:
            return  # left unanswered, it reconnects as a new worker
        worker = self.workers.get(identity)
        if worker is None:
            # New, or back after being dropped (or after a broker restart).
            worker = self.workers[identity] = Worker(identity, 0.0)
            self.idle[identity] = None
            log.info(
                "worker %s joined (%d connected)", identity.hex(), len(self.workers)
            )
        worker.expiry = time.monotonic() + self.heartbeat * self.liveness
        if command == proto.RESULT and len(args) == 3:
            self._on_result(worker, args)
        elif command == proto.FAILED and len(args) >= 1:
            self._on_failed(worker, args)
        elif command == proto.READY and worker.task is not None:
            # A worker that restarted while holding a range lost it.
            self._requeue(self._release(worker), "worker restarted")
        elif command not in (proto.READY, proto.HEARTBEAT):
            log.warning(
                "unknown command %r from worker %s", command[:20], identity.hex()
            )

    def _on_result(self, worker: Worker, args: List[bytes]) -> None:
        task = worker.task
        try:
            task_id, start, length = (proto.number(a) for a in args)
        except ValueError:
            log.warning("malformed result from worker %s", worker.identity.hex())
            self._ban(worker, "sent a malformed result")
            return
        if task is None or task.id != task_id:
            # A range given to another worker, or one this worker held before
            # it was dropped or the broker restarted: only a holder answers.
            log.warning(
                "worker %s sent a result for range #%d, which it does not hold; "
                "ignored",
                worker.identity.hex(),
                task_id,
            )
            return
        given = task.holders[worker.identity]
        self._release(worker)
        size = task.hi - task.lo + 1
        probes = (task.lo + secrets.randbelow(size) for _ in range(PROBES))
        problem = collatz.check_longest(task.lo, task.hi, start, length, probes)
        if problem is not None:
            log.warning(
                "bad result from worker %s for range %d..%d of n=%d "
                "(%d with %d terms): %s",
                worker.identity.hex(),
                task.lo,
                task.hi,
                task.job.n,
                start,
                length,
                problem,
            )
            self._ban(worker, "sent a bad result")
            self._requeue(task, "its worker sent a bad result")
            return
        self.rates.append(size / max(time.monotonic() - given, 1e-3))
        if self.tasks.pop(task.id, None) is None:
            return  # another holder answered first, or its job timed out
        self._unqueue(task)
        job = task.job
        del job.pending[task.id]
        job.results.append((start, length))
        if not job.pending:
            self._finish(job)

    def _on_failed(self, worker: Worker, args: List[bytes]) -> None:
        reason = b" ".join(args[1:]).decode("ascii", "replace")[:200]
        if worker.task is not None and str(worker.task.id).encode() == args[0]:
            task = self._release(worker)
            self._requeue(task, f"worker failed: {reason}", failed=True)

    def _finish(self, job: Job) -> None:
        result = collatz.merge(job.results)
        self.cache[job.n] = result
        if len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)
        for waiter in job.waiters:
            self._reply(waiter, result)
        del self.jobs[job.n]
        log.info("job n=%d done: %d with %d terms", job.n, *result)

    def _release(self, worker: Worker) -> Task:
        """Take its range from a worker, which is idle again."""
        task, worker.task = worker.task, None
        del task.holders[worker.identity]
        self.idle[worker.identity] = None
        return task

    def _requeue(self, task: Task, why: str, failed: bool = False) -> None:
        """Queue a range that lost a holder, unless others hold it or it is done."""
        job = task.job
        if task.id not in job.pending:
            return  # done meanwhile, or its job is gone
        if failed:
            task.failures += 1
            if task.failures >= MAX_ATTEMPTS:
                log.error(
                    "job n=%d failed: range %d..%d failed %d times (%s)",
                    job.n,
                    task.lo,
                    task.hi,
                    task.failures,
                    why,
                )
                for waiter in job.waiters:
                    self._reply_error(
                        waiter,
                        proto.FAILED_CODE,
                        f"workers failed n={job.n} {task.failures} times",
                    )
                self._drop_job(job)
                return
        if task.holders or task.wanted:
            return  # still held by others, or queued already
        log.warning("re-queued range %d..%d of n=%d: %s", task.lo, task.hi, job.n, why)
        task.wanted, task.given = 1, None
        self.queue.appendleft(task)

    def _unqueue(self, task: Task) -> None:
        if task.wanted:
            self.queue.remove(task)
            task.wanted = 0

    def _task_timeout(self, task: Task) -> float:
        rate = min(self.rates) if self.rates else DEFAULT_RATE
        return max(self.task_timeout, TASK_SLACK * (task.hi - task.lo + 1) / rate)

    def _expire_tasks(self, now: float) -> None:
        """Give the ranges whose holders are silent past the timeout to more workers."""
        for task in self.tasks.values():
            if task.wanted or not task.holders:
                continue
            timeout = self._task_timeout(task)
            if now < task.given + timeout:
                continue
            task.timeouts += 1
            task.wanted = min(2**task.timeouts, MAX_COPIES)
            task.given = None
            self.queue.appendleft(task)
            log.warning(
                "range %d..%d of n=%d: no answer from %d worker(s) in %.1fs; "
                "giving it to %d more",
                task.lo,
                task.hi,
                task.job.n,
                len(task.holders),
                timeout,
                task.wanted,
            )

    def _remove_worker(self, worker: Worker, why: str) -> None:
        del self.workers[worker.identity]
        self.idle.pop(worker.identity, None)
        log.warning(
            "worker %s dropped: %s (%d left)",
            worker.identity.hex(),
            why,
            len(self.workers),
        )
        if worker.task is not None:
            task, worker.task = worker.task, None
            del task.holders[worker.identity]
            self._requeue(task, f"worker {worker.identity.hex()} {why}")

    def _ban(self, worker: Worker, why: str) -> None:
        """Drop a worker and ignore its messages from now on."""
        self._remove_worker(worker, why)
        self.banned[worker.identity] = None
        if len(self.banned) > MAX_BANNED:
            self.banned.popitem(last=False)

    def _expire_workers(self, now: float) -> None:
        for worker in [w for w in self.workers.values() if w.expiry < now]:
            self._remove_worker(worker, "heartbeat expired")

    def _send_worker(self, worker: Worker, frames: List[bytes]) -> bool:
        """Send to a worker; False (and the worker dropped if it is gone) on failure."""
        try:
            self.backend.send_multipart([worker.identity] + frames, zmq.NOBLOCK)
        except zmq.ZMQError as ex:
            if ex.errno == zmq.EHOSTUNREACH:
                self._remove_worker(worker, "unreachable")
            else:  # its queue is full: it is alive but not reading
                log.debug("could not send to worker %s: %s", worker.identity.hex(), ex)
            return False
        return True

    def _send_heartbeats(self) -> None:
        for worker in list(self.workers.values()):
            self._send_worker(worker, [proto.HEARTBEAT])

    def _dispatch(self) -> None:
        """Hand queued ranges to idle workers, least recently used first."""
        while self.queue and self.idle:
            identity, _ = self.idle.popitem(last=False)
            worker = self.workers[identity]
            task = self.queue[0]
            frames = [proto.TASK] + proto.numbers(task.id, task.lo, task.hi)
            if not self._send_worker(worker, frames):
                if identity in self.workers:  # alive but full: retry later
                    self.idle[identity] = None
                    return
                continue
            now = time.monotonic()
            worker.task = task
            task.holders[identity] = now
            if task.given is None:
                task.given = now
            task.wanted -= 1
            if not task.wanted:
                self.queue.popleft()
            log.debug(
                "range %d..%d of n=%d -> worker %s",
                task.lo,
                task.hi,
                task.job.n,
                identity.hex(),
            )


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workers.collatz.broker", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--frontend",
        default=settings.collatz_frontend,
        help="endpoint to bind for clients (COLLATZ_FRONTEND)",
    )
    parser.add_argument(
        "--backend",
        default=settings.collatz_backend,
        help="endpoint to bind for workers (COLLATZ_BACKEND)",
    )
    parser.add_argument(
        "--max-n",
        type=int,
        default=settings.collatz_max_n,
        help="largest n accepted (COLLATZ_MAX_N)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=settings.collatz_timeout,
        help="seconds a request may wait (COLLATZ_TIMEOUT)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=proto.HEARTBEAT_INTERVAL,
        help="seconds between heartbeats; workers must use the same",
    )
    parser.add_argument(
        "--liveness",
        type=int,
        default=proto.HEARTBEAT_LIVENESS,
        help="heartbeats a worker may miss before it is dropped",
    )
    parser.add_argument(
        "--task-timeout",
        type=float,
        default=None,
        help="least seconds a range's holders get before it goes to more "
        "workers (default heartbeat x liveness)",
    )
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: Optional[List[str]] = None) -> int:
    """Run the broker until SIGINT or SIGTERM."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    args = build_parser(settings).parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    endpoints = {"COLLATZ_FRONTEND": args.frontend, "COLLATZ_BACKEND": args.backend}
    try:
        keys = curve.server_keys(settings, curve.BROKER, endpoints)
    except curve.CurveError as ex:
        log.error("collatz broker cannot start: %s", ex)
        return 2
    broker = Broker(
        args.frontend,
        args.backend,
        max_n=args.max_n,
        timeout=args.timeout,
        heartbeat=args.heartbeat,
        liveness=args.liveness,
        task_timeout=args.task_timeout,
        keys=keys,
    )
    context = zmq.Context()
    try:
        broker.run(context)
    except KeyboardInterrupt:
        log.info("collatz broker stopping")
    except curve.CurveError as ex:
        log.error("collatz broker cannot start: %s", ex)
        return 2
    finally:
        context.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
