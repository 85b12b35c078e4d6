"""The push worker's webhook output: subscriptions and sender behind the fan-out.

The subscriptions and the signed sender with its retry policy come from the
webhooks part (:mod:`db.subscriptions`, :mod:`workers.webhook_sender`); the
fan-out gives each subscription a thread and a cursor of its own
(:mod:`workers.push_fanout`).
"""

from typing import List

from api.settings import Settings
from db.push import CheckpointStore
from db.sql import Database
from db.subscriptions import Subscription
from db.subscriptions import SubscriptionStore
from workers.push_fanout import Fanout
from workers.push_feed import EventFeed
from workers.webhook_sender import RetryPolicy
from workers.webhook_sender import WebhookSender


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


def make_fanout(settings: Settings, database: Database, feed: EventFeed,
                checkpoints: CheckpointStore, start: int) -> Fanout:
    """The fan-out to the webhook subscriptions in ``database``."""
    store = SubscriptionStore(database)
    policy = RetryPolicy.from_settings(settings)

    def make_sender(sleep):
        # One sender (one HTTP session) per subscription thread; its back-off
        # sleeps end early when the worker stops.
        return WebhookSender(store, policy, sleep=sleep)

    return Fanout(feed, ActiveSubscriptions(store), make_sender, checkpoints, start)
