"""The SQL schema: every table module, so ``metadata`` holds every table.

Table modules import ``db.sql`` for :class:`db.sql.Base`; this module
imports them (and nothing imports it but the places that create tables), so
there is no import circle.
"""

import sqlalchemy as sa

import db.checkpoints  # noqa: F401  (push_checkpoints)
import db.links  # noqa: F401  (links, visits)
import db.notes.sql  # noqa: F401  (notes, note_changes, note_sequence)
import db.primes  # noqa: F401  (primes)
import db.ratelimits  # noqa: F401  (rate_limits)
import db.salaries.tables  # noqa: F401  (employees, salary_departments, salary_imports)
import db.subscriptions  # noqa: F401  (webhook_subscriptions, webhook_attempts)
import db.webhooks  # noqa: F401  (webhook_deliveries)
from db.sql import Base

#: Every table of the SQL store.
metadata = Base.metadata


def create_schema(engine: sa.Engine) -> None:
    """Create every table that does not exist yet (idempotent)."""
    metadata.create_all(engine)
