"""marshmallow fields shared by the request schemas."""

import datetime

from marshmallow import ValidationError
from marshmallow import fields

from core.urls import UnsafeUrl
from core.urls import normalize_url


class SafeUrl(fields.String):
    """A string field that loads as :func:`core.urls.normalize_url` of the input."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalize_url(text)
        except UnsafeUrl as ex:
            raise ValidationError(str(ex)) from None


class IsoDateTime(fields.AwareDateTime):
    """ISO 8601 date-time, ``Z`` suffix included; UTC when no offset is given.

    Python 3.9's ``datetime.fromisoformat`` (PyPy) does not read ``Z``, and the
    backport marshmallow would patch it with does not build under PyPy.
    """

    def __init__(self, **kwargs):
        super().__init__(default_timezone=datetime.timezone.utc, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> datetime.datetime:
        if isinstance(value, str) and value[-1:] in ("Z", "z"):
            value = value[:-1] + "+00:00"
        return super()._deserialize(value, attr, data, **kwargs)
