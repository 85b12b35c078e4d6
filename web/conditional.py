"""Conditional writes: the versions an ``If-Match`` header accepts.

An item whose ETag is its version number (notes, links) is written only at
one of these versions; the store checks and writes in one atomic step and
answers 412 otherwise. Without If-Match the write is unconditional, as
RFC 9110 has it.
"""

from typing import Optional
from typing import Set

import falcon

from web.fields import INT32_MAX

#: Longest version number in an ETag (version columns are 32-bit integers).
_VERSION_DIGITS = len(str(INT32_MAX))


def if_match_versions(req: falcon.Request) -> Optional[Set[int]]:
    """The versions If-Match accepts (strong comparison); None without If-Match.

    A tag that cannot be a version (not ASCII digits, or past the range of
    the version column) names none: with no other tag, the write answers 412.
    """
    tags = req.if_match
    if tags is None or "*" in tags:
        return None  # "*": any current version
    return {
        int(tag)
        for tag in tags
        if not tag.is_weak
        and tag.isascii()
        and tag.isdigit()
        and len(tag) <= _VERSION_DIGITS
        and int(tag) <= INT32_MAX
    }
