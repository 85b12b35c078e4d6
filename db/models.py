"""Imports every module that defines SQL tables, so Base.metadata knows them all."""

import db.links  # noqa: F401
import db.notes_sql  # noqa: F401  (notes, note_changes, note_sequence)
import db.primes  # noqa: F401
import db.push  # noqa: F401  (push_checkpoints)
import db.salaries  # noqa: F401
import db.subscriptions  # noqa: F401
import db.webhooks  # noqa: F401
