"""Every store, built from the settings in one place.

The app factory and every daemon call :func:`open_stores`; tests build
:class:`Stores` (or call this with their own settings) and inject it. Building
opens no connection: engines and clients connect on first use, in the
process that uses them (gunicorn forks after building the app).
"""

import dataclasses
from typing import Optional

from core.settings import Settings
from core.wakeup import Notifier
from db.checkpoints import CheckpointStore
from db.keys import KeyStore
from db.links import LinkStore
from db.notes.base import NotesStore
from db.notes.rethink import RethinkNotesStore
from db.notes.sql import SqlNotesStore
from db.notes.sql import Wakeups
from db.primes import PrimeStore
from db.ratelimit import RateLimitStore
from db.salaries.store import SalaryStore
from db.server_secrets import ServerSecrets
from db.sql import Database
from db.subscriptions import SubscriptionStore
from db.webhooks import WebhookStore


@dataclasses.dataclass(frozen=True)
class Stores:
    """The stores of one process, sharing one SQL database handle."""

    database: Database
    notes: NotesStore
    links: LinkStore
    primes: PrimeStore
    salaries: SalaryStore
    webhooks: WebhookStore
    subscriptions: SubscriptionStore
    checkpoints: CheckpointStore
    rate_limits: RateLimitStore
    keys: KeyStore
    #: Announces the SQL notes store's commits to the push worker.
    notifier: Notifier
    secrets: ServerSecrets

    def close(self) -> None:
        """Release every connection (at shutdown)."""
        self.notes.close()
        self.links.close()
        self.notifier.close()
        self.database.dispose()


def open_notes_store(
    settings: Settings,
    database: Database,
    notifier: Notifier,
    wakeups: Optional[Wakeups] = None,
) -> NotesStore:
    """RethinkDB when ``RETHINKDB_URL`` is set, else the SQL tables of ``database``.

    The SQL store announces each commit through ``notifier``; given
    ``wakeups`` (the push worker's listener on it), its change stream reads
    the log when one arrives and polls only every ``PUSH_POLL_INTERVAL``.
    """
    if settings.rethinkdb_url:
        return RethinkNotesStore.from_url(
            settings.rethinkdb_url,
            table=settings.rethinkdb_table,
            timeout=settings.rethinkdb_timeout,
        )
    if wakeups is None:
        return SqlNotesStore(database, on_commit=notifier.notify)
    return SqlNotesStore(
        database,
        on_commit=notifier.notify,
        wakeups=wakeups,
        poll_interval=settings.push_poll_interval,
    )


def open_stores(settings: Settings, wakeups: Optional[Wakeups] = None) -> Stores:
    """The stores ``settings`` describe (``DATABASE_URL``, ``RETHINKDB_URL``, ...).

    ``wakeups``: see :func:`open_notes_store` (the push worker passes them).
    """
    database = Database(settings.database_url)
    notifier = Notifier(settings.push_wake_address)  # PUSH_WAKE_ADDRESS
    return Stores(
        database=database,
        notes=open_notes_store(settings, database, notifier, wakeups),
        links=LinkStore(
            database,
            settings.visit_salt,
            flush_interval=settings.visit_flush_interval,
        ),
        primes=PrimeStore(database),
        salaries=SalaryStore(database),
        webhooks=WebhookStore(database),
        subscriptions=SubscriptionStore(database),
        checkpoints=CheckpointStore(database),
        rate_limits=RateLimitStore(database),
        keys=KeyStore(database),
        notifier=notifier,
        secrets=ServerSecrets(database),
    )
