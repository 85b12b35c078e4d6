"""One clock and one time format for the whole project.

Every timestamp a client sees is ISO 8601 in UTC with milliseconds and a
``Z``: ``2025-01-31T12:00:00.123Z``. The clock keeps milliseconds only (what
RethinkDB stores and what the format shows), so a value read back equals the
value written. SQL columns without a zone hold naive UTC; :func:`as_utc` and
:func:`naive_utc` convert at the column.
"""

import datetime
from typing import Optional


def utc_now() -> datetime.datetime:
    """The current time, aware UTC, to the millisecond."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(moment: Optional[datetime.datetime]) -> Optional[datetime.datetime]:
    """``moment`` as an aware UTC datetime; a naive one is taken to be UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def naive_utc(moment: Optional[datetime.datetime]) -> Optional[datetime.datetime]:
    """``moment`` as naive UTC, for columns that keep no zone (alike everywhere)."""
    if moment is None:
        return None
    return as_utc(moment).replace(tzinfo=None)


def z_as_offset(text: str) -> str:
    """``text`` with a final ``Z`` (or ``z``) written ``+00:00``.

    Python 3.9's ``datetime.fromisoformat`` (PyPy's) reads only the second.
    """
    if text[-1:] in ("Z", "z"):
        return text[:-1] + "+00:00"
    return text


def isoformat(moment: Optional[datetime.datetime]) -> Optional[str]:
    """The API's time format: ``2024-05-01T12:00:00.123Z`` (None stays None).

    The same text as ``isoformat(timespec="milliseconds")`` with ``Z`` for
    ``+00:00``, formatted directly: datetime.isoformat takes about 5 us
    under PyPy (its datetime is pure Python), this about 0.2 us.
    """
    if moment is None:
        return None
    if moment.tzinfo is not datetime.timezone.utc:
        moment = as_utc(moment)
    # %-formatting: under PyPy about 5 times faster than an f-string's specs.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond // 1000,
    )
