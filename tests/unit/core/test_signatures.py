"""The signature schemes, directly (core/signatures.py)."""

import base64
import hashlib
import hmac

import pytest

from core import signatures
from core.signatures import SignatureError

BODY = b'{"type":"note.created","data":{"id":1}}'
# The Standard Webhooks reference test vector (standard-webhooks spec repository).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def std_headers(secret=SPEC_SECRET, msg_id="msg_1", timestamp=1_700_000_000, body=BODY):
    return signatures.standard_headers(secret, msg_id, timestamp, body)


# GitHub


def test_github_signature_is_hex_hmac_sha256_of_the_body():
    expected = hmac.new(
        b"It's a Secret to Everybody", b"Hello, World!", hashlib.sha256
    ).hexdigest()
    assert signatures.github_sign("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=" + expected
    )
    # GitHub's documented example value.
    assert (
        expected == "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_github_valid_signature_passes():
    signatures.github_verify("s3cret", BODY, signatures.github_sign("s3cret", BODY))


@pytest.mark.parametrize(
    "secret, body, header, message",
    [
        ("s3cret", BODY + b" ", None, "does not match"),  # tampered body
        ("other", BODY, None, "does not match"),  # wrong secret
        ("s3cret", BODY, "", "missing"),  # missing header
        ("s3cret", BODY, "sha1=abc", "does not match"),  # wrong algorithm
        ("s3cret", BODY, "sha256=\u00e9", "does not match"),  # non-ASCII junk
    ],
)
def test_github_bad_signatures_are_refused(secret, body, header, message):
    header = signatures.github_sign("s3cret", BODY) if header is None else header
    with pytest.raises(SignatureError, match=message):
        signatures.github_verify(secret, body, header)


# Standard Webhooks


def test_standard_signature_matches_the_spec_test_vector():
    assert signatures.standard_sign(
        SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY
    ) == (SPEC_SIGNATURE)
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    signatures.standard_verify(SPEC_SECRET, SPEC_BODY, headers, now=SPEC_TIMESTAMP + 10)


def test_standard_valid_signature_passes():
    signatures.standard_verify(SPEC_SECRET, BODY, std_headers(), now=1_700_000_000)


def test_standard_plain_text_secret_is_used_as_utf8():
    headers = std_headers(secret="plain secret")
    expected = base64.b64encode(
        hmac.new(b"plain secret", b"msg_1.1700000000." + BODY, hashlib.sha256).digest()
    ).decode()
    assert headers["webhook-signature"] == "v1," + expected
    signatures.standard_verify("plain secret", BODY, headers, now=1_700_000_000)


def test_standard_tampered_body_is_refused():
    with pytest.raises(SignatureError, match="No webhook-signature matches"):
        signatures.standard_verify(
            SPEC_SECRET, BODY.replace(b"1", b"2"), std_headers(), now=1_700_000_000
        )


def test_standard_tampered_id_is_refused():
    headers = dict(std_headers(), **{"webhook-id": "msg_2"})
    with pytest.raises(SignatureError, match="No webhook-signature matches"):
        signatures.standard_verify(SPEC_SECRET, BODY, headers, now=1_700_000_000)


def test_standard_wrong_secret_is_refused():
    other = signatures.generate_secret()
    with pytest.raises(SignatureError, match="No webhook-signature matches"):
        signatures.standard_verify(other, BODY, std_headers(), now=1_700_000_000)


@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400])
def test_standard_timestamp_outside_five_minutes_is_refused(offset):
    # Stale (the message is older than now) and future (newer than now) alike,
    # although the signature itself is genuine.
    with pytest.raises(SignatureError, match="too old or too far in the future"):
        signatures.standard_verify(
            SPEC_SECRET, BODY, std_headers(), now=1_700_000_000 - offset
        )


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_standard_timestamp_within_five_minutes_passes(offset):
    signatures.standard_verify(
        SPEC_SECRET, BODY, std_headers(), now=1_700_000_000 + offset
    )


@pytest.mark.parametrize(
    "missing", ["webhook-id", "webhook-timestamp", "webhook-signature"]
)
def test_standard_missing_header_is_refused(missing):
    headers = dict(std_headers(), **{missing: None})
    with pytest.raises(SignatureError, match=f"Missing header.*{missing}"):
        signatures.standard_verify(SPEC_SECRET, BODY, headers, now=1_700_000_000)


def test_standard_non_numeric_timestamp_is_refused():
    headers = dict(std_headers(), **{"webhook-timestamp": "yesterday"})
    with pytest.raises(SignatureError, match="not an integer"):
        signatures.standard_verify(SPEC_SECRET, BODY, headers, now=1_700_000_000)


def test_standard_any_of_several_signatures_may_match():
    good = std_headers()["webhook-signature"]
    rotated = std_headers(secret=signatures.generate_secret())["webhook-signature"]
    headers = dict(std_headers(), **{"webhook-signature": f"v1a,xyz {rotated} {good}"})
    signatures.standard_verify(SPEC_SECRET, BODY, headers, now=1_700_000_000)


def test_standard_signature_of_another_version_is_not_accepted():
    good = std_headers()["webhook-signature"]
    headers = dict(std_headers(), **{"webhook-signature": good.replace("v1,", "v2,")})
    with pytest.raises(SignatureError):
        signatures.standard_verify(SPEC_SECRET, BODY, headers, now=1_700_000_000)


# Secrets


def test_generated_secrets_are_whsec_base64_of_32_random_bytes():
    first, second = signatures.generate_secret(), signatures.generate_secret()
    assert first.startswith("whsec_") and first != second
    assert len(signatures.decode_secret(first)) == 32


def test_bad_base64_after_whsec_is_a_value_error():
    with pytest.raises(ValueError, match="base64"):
        signatures.decode_secret("whsec_not base64!")
