"""core/clock.py: the API's time format, and reading it back under Python 3.9."""

import datetime

import pytest

from core.clock import isoformat
from core.clock import utc_now
from core.clock import z_as_offset


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-07T23:47:37.123Z", "2026-12-07T23:47:37.123+00:00"),
        ("2026-12-07T23:47:37z", "2026-12-07T23:47:37+00:00"),
        ("2026-12-07T23:47:37+02:00", "2026-12-07T23:47:37+02:00"),
        ("2026-12-07 23:47:37", "2026-12-07 23:47:37"),
        ("", ""),
    ],
)
def test_only_a_final_z_becomes_an_offset(text, expected):
    assert z_as_offset(text) == expected


def test_what_the_api_writes_reads_back_as_the_same_moment():
    moment = utc_now()
    text = isoformat(moment)
    assert text.endswith("Z") and len(text) == len("2026-12-07T23:47:37.123Z")
    assert datetime.datetime.fromisoformat(z_as_offset(text)) == moment


def test_isoformat_writes_other_zones_in_utc():
    paris = datetime.timezone(datetime.timedelta(hours=1))
    moment = datetime.datetime(2027, 1, 1, 0, 30, 0, 456789, tzinfo=paris)
    assert isoformat(moment) == "2026-12-31T23:30:00.456Z"
    assert isoformat(None) is None
