"""Secrets kept out of what the project prints: settings and access logs.

:data:`SECRET_QUERY_PARAMS` names the credentials among query parameters;
:func:`mask_target`, :func:`mask_url` and :func:`mask_webhook_sources` mask
them, keeping the shape (names, hosts, paths). Usage:
docs/operations/security.md#secrets-in-settings-and-logs
"""

import json
import re

#: What a masked value reads as.
MASK = "***"

#: Query parameters that carry credentials, lower-case: the hub
#: verification's token, the push worker's stream tickets, and the names
#: clients and libraries put tokens and passwords under (OAuth's
#: ``access_token``, libpq's ``password``).
SECRET_QUERY_PARAMS = (
    "hub.verify_token",
    "ticket",
    "access_token",
    "token",
    "api_key",
    "password",
    "sslpassword",
)

#: ``name=value`` of a secret parameter in a query string (names compared
#: without case); a value ends at the next parameter, a fragment or a space
#: (the request line's " HTTP/1.1").
_SECRET_PAIR = re.compile(
    r"(?i)(^|[&;])((?:"
    + "|".join(re.escape(name) for name in SECRET_QUERY_PARAMS)
    + r")=)[^&;#\s]*"
)

#: ``scheme://user:password@`` at the start of a URL.
_PASSWORD = re.compile(r"\A([A-Za-z][A-Za-z0-9+.-]*://[^:/?#@]*):.*@", re.DOTALL)

#: Keys of a ``WEBHOOK_SOURCES`` source that hold secrets.
_SOURCE_SECRETS = ("secret", "verify_token")


def mask_query(query: str) -> str:
    """``query`` (without its ``?``) with the values of secret parameters masked."""
    return _SECRET_PAIR.sub(lambda m: m.group(1) + m.group(2) + MASK, query)


def mask_target(target: str) -> str:
    """A request target or URL with the values of secret query parameters masked.

    Cheap when there is no query string: the access log calls it per line.
    """
    path, mark, rest = target.partition("?")
    if not mark:
        return target
    query, hash_mark, fragment = rest.partition("#")
    return path + mark + mask_query(query) + hash_mark + fragment


def mask_url(url: str) -> str:
    """``url`` with its password (``user:password@``) and secret parameters masked.

    The password is taken to run to the last ``@``: a password with an
    unencoded ``@`` or ``/`` is still masked whole (at worst, more is).
    """
    return mask_target(_PASSWORD.sub(r"\1:" + MASK + "@", url, count=1))


def mask_webhook_sources(text: str) -> str:
    """``WEBHOOK_SOURCES`` with every source's secret and verify token masked.

    Text that is not a JSON object of objects is masked whole: where its
    secrets are cannot be told.
    """
    if not text.strip():
        return text
    try:
        sources = json.loads(text)
    except ValueError:
        return MASK
    if not isinstance(sources, dict) or not all(
        isinstance(source, dict) for source in sources.values()
    ):
        return MASK
    masked = {
        name: {
            key: MASK if key in _SOURCE_SECRETS else value
            for key, value in source.items()
        }
        for name, source in sources.items()
    }
    return json.dumps(masked)


def mask_all(value: str) -> str:
    """A secret as a whole: masked unless empty (so "unset" still shows)."""
    return MASK if value else value
