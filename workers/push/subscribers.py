"""The push worker's webhook output: subscriptions and sender behind the fan-out.

The subscriptions and the signed sender with its retry policy come from the
webhooks part (:mod:`db.subscriptions`, :mod:`workers.webhooks.sender`); the
fan-out gives each subscription a thread and a cursor of its own
(:mod:`workers.push.fanout`).
"""

from typing import List

from core.settings import Settings
from core.targets import Targets
from db.pg_claims import PgClaims
from db.pg_wakeups import is_postgresql
from db.stores import Stores
from db.subscriptions import Subscription
from db.subscriptions import SubscriptionStore
from workers.push.fanout import Fanout
from workers.push.feed import EventFeed
from workers.webhooks.sender import RetryPolicy
from workers.webhooks.sender import WebhookSender


class ActiveSubscriptions:
    """Lists the active subscriptions (what the fan-out delivers to)."""

    def __init__(self, store: SubscriptionStore, page_size: int = 500):
        self._store = store
        self._page_size = page_size

    def active(self) -> List[Subscription]:
        """Every active subscription, oldest first."""
        found: List[Subscription] = []
        after = None
        while True:
            page, after = self._store.page(self._page_size, after)
            found.extend(subscription for subscription in page if subscription.active)
            if after is None:
                return found


def make_fanout(
    settings: Settings, stores: Stores, feed: EventFeed, start: int
) -> Fanout:
    """The fan-out to the webhook subscriptions of ``stores``."""
    store = stores.subscriptions
    policy = RetryPolicy.from_settings(settings)
    targets = Targets(settings.allowed_private_targets)

    def make_sender(sleep):
        # One sender (one HTTP session) per subscription thread; its back-off
        # sleeps end early when the worker stops.
        return WebhookSender(store, policy, targets, sleep=sleep)

    # Several push workers on one PostgreSQL database: each subscription is
    # delivered by the one that claimed it.
    claims = (
        PgClaims(settings.database_url)
        if is_postgresql(settings.database_url)
        else None
    )
    return Fanout(
        feed,
        ActiveSubscriptions(store),
        make_sender,
        stores.checkpoints,
        start,
        replays=store,
        claims=claims,
    )
