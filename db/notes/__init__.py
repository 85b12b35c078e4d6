"""The notes store: an interface (``base``), two implementations (``sql``, ``rethink``).

``db.stores.open_stores`` picks the implementation from the settings.
"""
