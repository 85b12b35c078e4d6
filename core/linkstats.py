"""What a link's statistics keep of a visit, and the calendar they count in.

A visit counts in its UTC hour, under its referrer's host and its
user-agent's family. Buckets of an interval (hour, day, ISO week from
Monday, calendar month) are whole UTC hours, so hourly counts add up to any
of them exactly.
"""

import datetime
import re
from typing import List
from typing import Optional
from urllib.parse import urlsplit

INTERVALS = ("hour", "day", "week", "month")
#: Longest host or family name kept (a DNS name is at most 253 characters).
NAME_MAX = 255
#: The families :func:`agent_family` answers; None: no ``User-Agent``.
FAMILIES = ("bot", "curl", "Edge", "Opera", "Firefox", "Chrome", "Safari", "other")

# Bots name themselves "...bot/2.1", "...Bot", "...crawler", "...spider". The
# "[Bb]ot\b" rule is case-sensitive: phone models such as "CUBOT" are no bots.
_BOT = re.compile(r"[Bb]ot\b|[Cc]rawl|[Ss]pider|Slurp|facebookexternalhit|Headless")
# Checked in order: Edge and Opera also say "Chrome/", Chrome also says
# "Safari/", so the more specific token comes first.
_BROWSERS = (
    ("Edge", ("Edg/", "EdgA/", "EdgiOS/", "Edge/")),
    ("Opera", ("OPR/", "Opera")),
    ("Firefox", ("Firefox/", "FxiOS/")),
    ("Chrome", ("Chrome/", "CriOS/", "Chromium/")),
    ("Safari", ("Safari/",)),
)


def agent_family(user_agent: Optional[str]) -> Optional[str]:
    """The family of a ``User-Agent``: one of :data:`FAMILIES`; None without one.

    Browsers built on Chromium that do not name themselves as Edge or Opera
    do (Samsung Internet, Brave, Vivaldi) count as Chrome.
    """
    if not user_agent:
        return None
    if _BOT.search(user_agent):
        return "bot"
    if user_agent.startswith("curl/"):
        return "curl"
    for family, tokens in _BROWSERS:
        if any(token in user_agent for token in tokens):
            return family
    return "other"


def referrer_host(referrer: Optional[str]) -> Optional[str]:
    """The lower-cased host of a stored referrer; None without one (or no host)."""
    if not referrer:
        return None
    try:
        host = urlsplit(referrer).hostname
    except ValueError:
        return None
    return host[:NAME_MAX] if host else None


def floor(moment: datetime.datetime, interval: str) -> datetime.datetime:
    """The start of the ``interval`` bucket that holds ``moment`` (same zone)."""
    hour = moment.replace(minute=0, second=0, microsecond=0)
    if interval == "hour":
        return hour
    day = hour.replace(hour=0)
    if interval == "day":
        return day
    if interval == "week":
        return day - datetime.timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    raise ValueError(f"interval must be one of {INTERVALS}, got {interval!r}")


def step(start: datetime.datetime, interval: str) -> datetime.datetime:
    """The start of the bucket after the one starting at ``start``."""
    if interval == "month":
        if start.month == 12:
            return start.replace(year=start.year + 1, month=1)
        return start.replace(month=start.month + 1)
    hours = {"hour": 1, "day": 24, "week": 24 * 7}[interval]
    return start + datetime.timedelta(hours=hours)


def back(start: datetime.datetime, interval: str, count: int) -> datetime.datetime:
    """The start of the bucket ``count`` buckets before the one at ``start``."""
    if interval == "month":
        months = start.year * 12 + start.month - 1 - count
        return start.replace(year=months // 12, month=months % 12 + 1)
    hours = {"hour": 1, "day": 24, "week": 24 * 7}[interval]
    return start - datetime.timedelta(hours=hours * count)


def buckets(
    since: datetime.datetime, until: datetime.datetime, interval: str, most: int
) -> Optional[List[datetime.datetime]]:
    """The starts of the buckets that cover ``[since, until)``; None past ``most``.

    The first starts at or before ``since``, the last before ``until``.
    """
    starts = []
    start = floor(since, interval)
    while start < until:
        if len(starts) == most:
            return None
        starts.append(start)
        start = step(start, interval)
    return starts
