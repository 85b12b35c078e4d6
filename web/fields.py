"""marshmallow fields shared by the request schemas."""

import datetime
from collections.abc import Iterable
from typing import Optional

import falcon
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate

from core.clock import z_as_offset
from core.targets import Targets
from core.urls import UnsafeUrl
from core.urls import host_of
from core.urls import normalize_url

#: Largest signed 64-bit SQL integer (``sa.BigInteger`` columns).
INT64_MAX = 2**63 - 1
#: Largest signed 32-bit SQL integer (``sa.Integer`` columns on PostgreSQL,
#: whose driver casts a bound value to the column's type).
INT32_MAX = 2**31 - 1
#: Route converter of the id of an ``sa.Integer`` primary key:
#: ``/things/{thing_id:<ID_CONVERTER>}``; an id outside it names nothing (404)
#: and never reaches a store.
ID_CONVERTER = f"int(min=1, max={INT32_MAX})"


def cursor_field(
    description: str, minimum: int = 1, maximum: int = INT32_MAX
) -> fields.Integer:
    """A paging cursor: an id or sequence number, in its column's range."""
    return fields.Integer(
        validate=validate.Range(minimum, maximum),
        metadata={"description": description},
    )


class SafeUrl(fields.String):
    """A string field that loads as :func:`core.urls.normalize_url` of the input."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalize_url(text)
        except UnsafeUrl as ex:
            raise ValidationError(str(ex)) from None


def check_target(
    targets: Targets, url: str, own_hosts: Iterable[str] = (), field: str = "url"
) -> None:
    """A 422 naming ``field`` unless ``targets`` accepts ``url`` (normalised)."""
    try:
        targets.check_url(url, own_hosts)
    except UnsafeUrl as ex:
        raise ValidationError({field: [str(ex)]}) from None


def request_host(req: falcon.Request) -> Optional[str]:
    """The canonical host the client named in ``Host`` (None if not a valid one)."""
    try:
        return host_of("http://" + req.host)
    except UnsafeUrl:
        return None


class IsoDateTime(fields.AwareDateTime):
    """ISO 8601 date-time, ``Z`` suffix included; UTC when no offset is given.

    Python 3.9's ``datetime.fromisoformat`` (PyPy) does not read ``Z``, and the
    backport marshmallow would patch it with does not build under PyPy: the
    ``Z`` is written as an offset first.
    """

    def __init__(self, **kwargs):
        super().__init__(default_timezone=datetime.timezone.utc, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> datetime.datetime:
        if isinstance(value, str):
            value = z_as_offset(value)
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            # In UTC, as it is stored: 9999-12-31T23:59:59-14:00 is past the
            # calendar's end there, and 0001-01-01T00:00:00+01:00 before it.
            return moment.astimezone(datetime.timezone.utc)
        except (OverflowError, ValueError):
            raise ValidationError(
                "Out of range: the time must fall between years 1 and 9999 in UTC."
            ) from None
