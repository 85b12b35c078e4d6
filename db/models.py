"""Imports every module that defines SQL tables, so Base.metadata knows them all."""

import db.subscriptions  # noqa: F401
import db.webhooks  # noqa: F401
