"""Webhook signatures: sign and verify, for inbound checks and outbound deliveries.

Two schemes, pure functions: GitHub's (hex HMAC-SHA256 of the body) and
Standard Webhooks' (base64 HMAC-SHA256 of ``id.timestamp.body``, several
signatures allowed, timestamp within :data:`TOLERANCE_SECONDS`). Every
comparison goes through :func:`hmac.compare_digest`. Usage: docs/user/webhooks.md
"""

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Optional

#: How far a Standard Webhooks timestamp may be from now (seconds, both ways).
TOLERANCE_SECONDS = 5 * 60
#: Prefix of a Standard Webhooks secret whose rest is base64.
SECRET_PREFIX = "whsec_"
GITHUB_HEADER = "X-Hub-Signature-256"
_GITHUB_PREFIX = "sha256="


class SignatureError(Exception):
    """The request is not signed, or not signed with the secret (safe to show)."""


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a secret: ``whsec_<base64>`` decoded, anything else as UTF-8.

    Raises:
        ValueError: the part after ``whsec_`` is not valid base64.
    """
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode("utf-8")
    try:
        return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a whsec_ secret must be followed by base64") from None


def generate_secret(nbytes: int = 32) -> str:
    """A new random signing secret, ``whsec_`` + base64 of ``nbytes`` bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode("ascii")


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


# GitHub ---------------------------------------------------------------------


def github_sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value for ``body``: ``sha256=<hex>``."""
    return (
        _GITHUB_PREFIX
        + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    )


def github_verify(secret: str, body: bytes, header: Optional[str]) -> None:
    """Check an ``X-Hub-Signature-256`` header against ``body``.

    Raises:
        SignatureError: the header is missing, malformed or does not match.
    """
    if not header:
        raise SignatureError(f"The {GITHUB_HEADER} header is missing.")
    expected = github_sign(secret, body)
    # Both sides as bytes: compare_digest refuses non-ASCII str.
    if not hmac.compare_digest(
        expected.encode("ascii"), header.strip().encode("utf-8")
    ):
        raise SignatureError(f"The {GITHUB_HEADER} signature does not match the body.")


# Standard Webhooks -----------------------------------------------------------


def standard_sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC of "id.timestamp.body">``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = _hmac_sha256(decode_secret(secret), signed)
    return "v1," + base64.b64encode(digest).decode("ascii")


def standard_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict:
    """The three Standard Webhooks headers for an outbound message."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_sign(secret, msg_id, timestamp, body),
    }


def standard_verify(
    secret: str,
    body: bytes,
    headers: Mapping[str, Optional[str]],
    now: float,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Check Standard Webhooks headers (``webhook-id``, ``-timestamp``, ``-signature``).

    Args:
        secret: The source's secret (``whsec_<base64>`` or plain text).
        body: The raw request body, exactly as received.
        headers: Lower-case header name -> value (None when absent).
        now: The current Unix time.
        tolerance: Seconds the timestamp may differ from ``now``, either way.

    Raises:
        SignatureError: a header is missing, the timestamp is out of tolerance,
            or no ``v1`` signature in the header matches.
    """
    msg_id = headers.get("webhook-id")
    raw_timestamp = headers.get("webhook-timestamp")
    header = headers.get("webhook-signature")
    missing = [
        name
        for name, value in (
            ("webhook-id", msg_id),
            ("webhook-timestamp", raw_timestamp),
            ("webhook-signature", header),
        )
        if not value
    ]
    if missing:
        raise SignatureError("Missing header(s): " + ", ".join(missing) + ".")
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not an integer.") from None
    if abs(now - timestamp) > tolerance:
        # Checked before the HMAC so a replayed old message is refused even
        # when its signature is genuine.
        raise SignatureError("webhook-timestamp is too old or too far in the future.")
    expected = standard_sign(secret, msg_id, timestamp, body).encode("ascii")
    matched = False
    for candidate in header.split():
        # Compare every candidate (no early exit) so timing does not reveal
        # which of several signatures matched.
        if candidate.startswith("v1,"):
            matched |= hmac.compare_digest(expected, candidate.encode("utf-8"))
    if not matched:
        raise SignatureError("No webhook-signature matches the body.")
