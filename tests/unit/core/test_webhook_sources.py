"""WEBHOOK_SOURCES: parsed and validated once, when the app is built."""

import json

import pytest

from core.webhook_sources import parse_sources


def test_empty_setting_means_no_sources():
    assert parse_sources("") == {}
    assert parse_sources("  ") == {}


def test_sources_are_parsed():
    sources = parse_sources(
        json.dumps(
            {
                "github": {
                    "scheme": "github",
                    "secret": "s3cret",
                    "verify_token": "tok",
                },
                "acme": {
                    "scheme": "standard",
                    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                },
            }
        )
    )
    assert sources["github"].scheme == "github"
    assert sources["github"].verify_token == "tok"
    assert sources["acme"].scheme == "standard"
    assert sources["acme"].verify_token is None
    assert "s3cret" not in repr(sources["github"])


@pytest.mark.parametrize(
    "value, message",
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"gh": "secret"}', "must be an object"),
        ('{"gh": {"scheme": "svix", "secret": "x"}}', "scheme must be one of"),
        ('{"gh": {"scheme": "github"}}', "secret must be a non-empty string"),
        (
            '{"gh": {"scheme": "github", "secret": ""}}',
            "secret must be a non-empty string",
        ),
        ('{"gh": {"scheme": "standard", "secret": "whsec_%%%"}}', "base64"),
        ('{"gh": {"scheme": "github", "secret": "x", "token": "t"}}', "unknown key"),
        (
            '{"gh": {"scheme": "github", "secret": "x", "verify_token": 5}}',
            "verify_token",
        ),
        ('{"Git Hub": {"scheme": "github", "secret": "x"}}', "source name"),
        ('{"deliveries": {"scheme": "github", "secret": "x"}}', "reserved"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(value, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_sources(value)
    assert "WEBHOOK_SOURCES" in str(info.value)


def test_error_messages_never_show_the_secret():
    with pytest.raises(ValueError) as info:
        parse_sources('{"gh": {"scheme": "nope", "secret": "hunter2"}}')
    assert "hunter2" not in str(info.value)


def test_the_app_refuses_to_start_with_a_bad_value(make_client):
    with pytest.raises(ValueError, match="WEBHOOK_SOURCES"):
        make_client(webhook_sources='{"gh": {"scheme": "github"}}')
