"""The one rule for text the API stores or looks up.

Unicode scalar values without NUL: PostgreSQL refuses U+0000, and no store or
encoder can write a lone surrogate. ``web.validation`` applies
:func:`text_error` to every value a responder gets; stored observations (a
visit's Referer, User-Agent) go through :func:`clean_text`.
"""

import re
from typing import Optional

_REFUSED = re.compile("[\x00\ud800-\udfff]")


def text_error(value: str) -> Optional[str]:
    """Why ``value`` breaks the text rule, or None when it keeps it."""
    match = _REFUSED.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return "Must not contain NUL (U+0000)."
    return "Must not contain a lone surrogate (U+D800 to U+DFFF)."


def clean_text(value: Optional[str]) -> Optional[str]:
    """``value`` with what the rule refuses replaced by U+FFFD (None stays None)."""
    if value is None:
        return None
    return _REFUSED.sub("\ufffd", value)
