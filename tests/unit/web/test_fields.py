"""The SafeUrl field: loads the normalised URL, refuses with a field error."""

import marshmallow
import pytest

from web.fields import SafeUrl


class Target(marshmallow.Schema):
    url = SafeUrl(required=True)


def test_safe_url_field_loads_the_normalised_url():
    assert Target().load({"url": "Example.com"}) == {"url": "https://example.com/"}


def test_safe_url_field_refuses_with_a_field_error():
    with pytest.raises(marshmallow.ValidationError) as info:
        Target().load({"url": "javascript:alert(1)"})
    assert "Only http and https" in info.value.messages["url"][0]


def test_safe_url_field_refuses_non_strings():
    with pytest.raises(marshmallow.ValidationError):
        Target().load({"url": 42})
