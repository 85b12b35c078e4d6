"""Deliver one event to one subscription: signed, with timeouts and retries.

:meth:`WebhookSender.deliver` blocks through the retries of its
:class:`RetryPolicy` and records every attempt, so each subscription needs a
thread of its own; a sender holds a ``requests.Session``, so one per thread.

Policy: docs/user/webhooks.md#subscriptions-and-outbound-deliveries
"""

import dataclasses
import email.utils
import logging
import random
import time
from typing import Callable
from typing import Iterator
from typing import Optional

import requests

from core import tracing
from core.signatures import standard_headers
from core.targets import Targets
from core.version import __version__
from core.wire import encode
from db.errors import NotFound
from db.subscriptions import Subscription
from db.subscriptions import SubscriptionStore
from workers.webhooks.transport import RefusedAddress
from workers.webhooks.transport import guarded_session

log = logging.getLogger(__name__)

USER_AGENT = f"falcon-pypy-api-webhooks/{__version__}"


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How hard the sender tries (see the module docstring)."""

    max_attempts: int = 5
    connect_timeout: float = 3.05
    timeout: float = 10.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 60.0
    max_failures: int = 5

    def __post_init__(self):
        if self.max_attempts < 1 or self.max_failures < 1:
            raise ValueError("max_attempts and max_failures must be at least 1")

    @classmethod
    def from_settings(cls, settings) -> "RetryPolicy":
        """The policy configured by the ``SUBSCRIPTION_*`` settings."""
        return cls(
            max_attempts=settings.subscription_max_attempts,
            timeout=settings.subscription_timeout,
            connect_timeout=min(settings.subscription_timeout, cls.connect_timeout),
            max_failures=settings.subscription_max_failures,
        )

    def backoff(self, retry: int, rand: float) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry).

        Exponential (``backoff_base * 2**(retry-1)``, at most ``backoff_max``)
        with "equal jitter": half of it fixed, the other half scaled by
        ``rand`` in [0, 1), so retries from many senders spread out but never
        come back at once.
        """
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (retry - 1))
        return ceiling / 2 + rand * ceiling / 2


@dataclasses.dataclass(frozen=True)
class DeliveryResult:
    """What happened to one event sent to one subscription."""

    delivered: bool
    attempts: int
    status_code: Optional[int] = None
    error: Optional[str] = None
    disabled: bool = False
    gone: bool = False


@dataclasses.dataclass(frozen=True)
class _Outcome:
    status_code: Optional[int]
    latency_ms: float
    error: Optional[str]
    retryable: bool
    retry_after: Optional[float] = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def parse_retry_after(value: Optional[str], now: float) -> Optional[float]:
    """Seconds to wait for a ``Retry-After`` (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - now)


class WebhookSender:
    """Sends events to subscriptions and records every attempt in ``store``.

    Args:
        store: Where attempts and delivery results are recorded.
        policy: Timeouts, retries, when to disable.
        targets: Which addresses deliveries may connect to (checked on the
            resolved address of every connection; see :mod:`core.targets`).
        session: The HTTP session (by default one that enforces ``targets``).
        sleep, now, monotonic, rand: Injected in tests; ``time.sleep``,
            ``time.time``, ``time.monotonic``, ``random.random`` by default.
    """

    def __init__(
        self,
        store: SubscriptionStore,
        policy: RetryPolicy = RetryPolicy(),
        targets: Optional[Targets] = None,
        session: Optional[requests.Session] = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ):
        self.store = store
        self.policy = policy
        self.session = session or guarded_session(targets or Targets())
        self._sleep = sleep
        self._now = now
        self._monotonic = monotonic
        self._rand = rand
        self._tracer = tracing.tracer(__name__)  # None: TRACING is off

    def close(self) -> None:
        """Close the HTTP session's connections."""
        self.session.close()

    def deliver(
        self, subscription: Subscription, event: dict, replay: bool = False
    ) -> DeliveryResult:
        """Send ``event`` (a dict with ``id`` and ``type``) to ``subscription``.

        Blocks through the retries; returns what happened. Never raises for
        what the endpoint does; a subscription deleted meanwhile ends the
        delivery with ``gone``. ``replay``: a delivery made again on request
        (its attempts are recorded as replays; same event id, same policy).

        With TRACING on, the delivery is a span in the trace the event's
        ``traceparent`` attribute names (the push worker's, see
        :mod:`workers.push.tracing`), and every attempt sends the span's
        ``traceparent`` header, so the receiver can join the trace.
        """
        if self._tracer is None:
            return self._deliver(subscription, event, replay)
        # Imported only here: a process that does not trace never loads it.
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace import StatusCode

        with self._tracer.start_as_current_span(
            "webhook deliver",
            context=tracing.parent(getattr(event, "traceparent", None)),
            kind=SpanKind.PRODUCER,
            attributes={
                "webhook.subscription.id": str(subscription.id),
                "webhook.event.id": str(event["id"]),
                "webhook.event.type": str(event["type"]),
                "webhook.replay": replay,
            },
        ) as span:
            result = self._deliver(subscription, event, replay)
            span.set_attribute("webhook.attempts", result.attempts)
            span.set_attribute("webhook.delivered", result.delivered)
            if result.status_code is not None:
                span.set_attribute("http.response.status_code", result.status_code)
            if not result.delivered:
                span.set_status(StatusCode.ERROR, result.error)
            return result

    def _deliver(
        self, subscription: Subscription, event: dict, replay: bool
    ) -> DeliveryResult:
        body = encode(event)
        event_id, event_type = str(event["id"]), str(event["type"])
        outcome = None
        attempt = 0
        while attempt < self.policy.max_attempts:
            attempt += 1
            outcome = self._attempt(subscription, event_id, body)
            try:
                self.store.record_attempt(
                    subscription.id,
                    event_id,
                    event_type,
                    attempt,
                    outcome.status_code,
                    outcome.latency_ms,
                    outcome.error,
                    outcome.delivered,
                    replay=replay,
                )
            except NotFound:
                return DeliveryResult(
                    False, attempt, outcome.status_code, outcome.error, gone=True
                )
            if outcome.delivered or not outcome.retryable:
                break
            if attempt == self.policy.max_attempts:
                break
            delay = self.policy.backoff(attempt, self._rand())
            if outcome.retry_after is not None:
                if outcome.retry_after > self.policy.max_retry_after:
                    log.info(
                        "subscription %s: Retry-After %.0fs is over the limit; "
                        "giving up on event %s",
                        subscription.id,
                        outcome.retry_after,
                        event_id,
                    )
                    break
                delay = outcome.retry_after
            self._sleep(delay)
        return self._finish(subscription, event_id, attempt, outcome)

    def _finish(
        self,
        subscription: Subscription,
        event_id: str,
        attempts: int,
        outcome: _Outcome,
    ) -> DeliveryResult:
        try:
            after = self.store.record_delivery(
                subscription.id, outcome.delivered, self.policy.max_failures
            )
        except NotFound:
            return DeliveryResult(
                outcome.delivered,
                attempts,
                outcome.status_code,
                outcome.error,
                gone=True,
            )
        disabled = subscription.active and not after.active
        if disabled:
            log.warning(
                "subscription %s disabled after %s failed deliveries in a row",
                subscription.id,
                after.failure_count,
            )
        elif not outcome.delivered:
            log.info(
                "subscription %s: event %s not delivered after %s attempt(s): %s",
                subscription.id,
                event_id,
                attempts,
                outcome.error,
            )
        return DeliveryResult(
            outcome.delivered,
            attempts,
            outcome.status_code,
            outcome.error,
            disabled=disabled,
        )

    def _attempt(
        self, subscription: Subscription, event_id: str, body: bytes
    ) -> _Outcome:
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        headers.update(
            standard_headers(subscription.secret, event_id, int(self._now()), body)
        )
        trace = tracing.traceparent()
        if trace is not None:
            headers["traceparent"] = trace
        started = self._monotonic()
        try:
            # stream=True: the status line and headers are all we need, so a
            # large answer is never read.
            response = self.session.post(
                subscription.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=(self.policy.connect_timeout, self.policy.timeout),
                stream=True,
            )
        except requests.Timeout:
            return _Outcome(
                None,
                self._elapsed_ms(started),
                f"timed out (limit {self.policy.timeout:g}s)",
                retryable=True,
            )
        except requests.ConnectionError as ex:
            refused = _find(ex, RefusedAddress)
            if refused is not None:
                # Not retried: the next attempt would resolve to the same place.
                return _Outcome(
                    None, self._elapsed_ms(started), refused.detail, retryable=False
                )
            return _Outcome(
                None,
                self._elapsed_ms(started),
                "connection failed: " + _reason(ex),
                retryable=True,
            )
        except requests.RequestException as ex:
            return _Outcome(
                None,
                self._elapsed_ms(started),
                "request failed: " + type(ex).__name__,
                retryable=False,
            )
        latency = self._elapsed_ms(started)
        status = response.status_code
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(
                response.headers.get("Retry-After"), self._now()
            )
        response.close()
        if 200 <= status < 300:
            return _Outcome(status, latency, None, retryable=False)
        return _Outcome(
            status,
            latency,
            f"HTTP {status}",
            retryable=status == 429 or status >= 500,
            retry_after=retry_after,
        )

    def _elapsed_ms(self, started: float) -> float:
        return (self._monotonic() - started) * 1000.0


def _chain(ex: BaseException) -> Iterator[BaseException]:
    """``ex`` and what it wraps: causes, contexts, urllib3 ``reason``s."""
    seen = set()
    current = ex
    while current is not None and id(current) not in seen:
        yield current
        seen.add(id(current))
        nested = getattr(current, "reason", None)
        if not isinstance(nested, BaseException):
            nested = current.__cause__ or current.__context__
        if (
            nested is None
            and current.args
            and isinstance(current.args[0], BaseException)
        ):
            nested = current.args[0]
        current = nested


def _find(ex: BaseException, kind: type) -> Optional[BaseException]:
    """The first exception of ``kind`` in the chain of ``ex``."""
    return next((item for item in _chain(ex) if isinstance(item, kind)), None)


def _reason(ex: BaseException) -> str:
    """The innermost OS-level reason of a requests error ("Connection refused")."""
    for item in _chain(ex):
        if isinstance(item, OSError) and item.strerror:
            return item.strerror
    return type(ex).__name__
