"""The inbound webhook sources, parsed once from the ``WEBHOOK_SOURCES`` setting.

A JSON object, source name -> ``{"scheme": "github" | "standard", "secret":
..., "verify_token": ...}``; a bad value raises ValueError naming what is
wrong, so the app refuses to start. Usage: docs/user/webhooks.md
"""

import dataclasses
import json
import re
from typing import Dict
from typing import Optional

from core.signatures import decode_secret

SCHEMES = ("github", "standard")
#: Names that cannot be sources because a literal route uses them.
RESERVED_NAMES = frozenset({"deliveries"})
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_KEYS = frozenset({"scheme", "secret", "verify_token"})


@dataclasses.dataclass(frozen=True)
class Source:
    """One configured sender of inbound webhooks."""

    name: str
    scheme: str
    secret: str = dataclasses.field(repr=False)
    verify_token: Optional[str] = dataclasses.field(default=None, repr=False)


def parse_sources(text: str) -> Dict[str, Source]:
    """Parse and validate ``WEBHOOK_SOURCES``; empty text means no sources.

    Raises:
        ValueError: the text is not valid JSON or a source is misconfigured;
            the message names the source and the problem (never the secret).
    """
    if not text or not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except ValueError as ex:
        raise ValueError(f"WEBHOOK_SOURCES is not valid JSON: {ex}") from None
    if not isinstance(raw, dict):
        raise ValueError("WEBHOOK_SOURCES must be a JSON object: name -> source")
    return {name: _parse_source(name, config) for name, config in raw.items()}


def _parse_source(name: str, config) -> Source:
    where = f"WEBHOOK_SOURCES[{name!r}]"
    if not _NAME.match(name):
        raise ValueError(
            f"{where}: a source name is 1-64 of a-z 0-9 _ - "
            "(starting with a letter or digit)"
        )
    if name in RESERVED_NAMES:
        raise ValueError(f"{where}: {name!r} is reserved (GET /webhooks/{name})")
    if not isinstance(config, dict):
        raise ValueError(f"{where} must be an object with scheme and secret")
    unknown = sorted(set(config) - _KEYS)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            f"expected {', '.join(sorted(_KEYS))}"
        )
    scheme = config.get("scheme")
    if scheme not in SCHEMES:
        raise ValueError(f"{where}: scheme must be one of {', '.join(SCHEMES)}")
    secret = config.get("secret")
    if not isinstance(secret, str) or not secret:
        raise ValueError(f"{where}: secret must be a non-empty string")
    try:
        key = decode_secret(secret)
    except ValueError as ex:
        raise ValueError(f"{where}: {ex}") from None
    if not key:
        raise ValueError(f"{where}: the secret decodes to nothing")
    token = config.get("verify_token")
    if token is not None and (not isinstance(token, str) or not token):
        raise ValueError(f"{where}: verify_token must be a non-empty string")
    return Source(name=name, scheme=scheme, secret=secret, verify_token=token)
