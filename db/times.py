"""Time helpers shared by the stores.

SQL columns hold naive UTC datetimes (SQLite keeps no zone); these read them
back as aware UTC and write the API's one timestamp format.
"""

import datetime
from typing import Optional


def as_utc(moment: Optional[datetime.datetime]) -> Optional[datetime.datetime]:
    """``moment`` as an aware UTC datetime; a naive one is taken to be UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=datetime.timezone.utc)


def isoformat(moment: Optional[datetime.datetime]) -> Optional[str]:
    """ISO 8601 in UTC with milliseconds and a ``Z``: ``2024-05-01T12:00:00.123Z``."""
    if moment is None:
        return None
    utc = as_utc(moment).astimezone(datetime.timezone.utc)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
