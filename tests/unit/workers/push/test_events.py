"""Note changes as push events, and the bytes each channel sends."""

import dataclasses
import datetime
import json

import pytest

from core.notes import EVENT_TYPES
from core.notes import Change
from core.notes import Note
from core.notes import event_json
from workers.push.events import parse_last_event_id
from workers.push.events import sse_frame
from workers.push.events import zmq_frames

CREATED_AT = datetime.datetime(
    2025, 1, 31, 12, 0, 0, 123000, tzinfo=datetime.timezone.utc
)
NOTE = Note(
    id="a" * 32,
    title="Groceries",
    body="milk\neggs, \u00e9t\u00e9",
    created_at=CREATED_AT,
    updated_at=CREATED_AT,
    version=1,
    position=3,
)
LATER = dataclasses.replace(
    NOTE, body="bread", version=2, updated_at=CREATED_AT + datetime.timedelta(minutes=5)
)
NOTE_JSON = {
    "id": "a" * 32,
    "title": "Groceries",
    "body": "milk\neggs, \u00e9t\u00e9",
    "created_at": "2025-01-31T12:00:00.123Z",
    "updated_at": "2025-01-31T12:00:00.123Z",
}
LATER_JSON = {**NOTE_JSON, "body": "bread", "updated_at": "2025-01-31T12:05:00.123Z"}
TS = datetime.datetime(2025, 1, 31, 12, 5, 0, 7000, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize(
    "kind, old, new, old_json, new_json",
    [
        ("created", None, NOTE, None, NOTE_JSON),
        ("updated", NOTE, LATER, NOTE_JSON, LATER_JSON),
        ("deleted", LATER, None, LATER_JSON, None),
    ],
)
def test_a_change_becomes_an_event_with_its_seq_as_id(
    kind, old, new, old_json, new_json
):
    change = Change(seq=42, type=kind, note_id=NOTE.id, old=old, new=new, ts=TS)
    assert event_json(change) == {
        "id": 42,
        "type": f"note.{kind}",
        "old_val": old_json,
        "new_val": new_json,
        "ts": "2025-01-31T12:05:00.007Z",
    }


def test_event_types():
    assert EVENT_TYPES == ("note.created", "note.updated", "note.deleted")


def test_zmq_message_is_topic_then_json():
    event = event_json(Change(3, "created", NOTE.id, None, NOTE, TS))
    topic, body = zmq_frames(event)
    assert topic == b"note.created" and topic.startswith(b"note.")
    assert json.loads(body.decode("utf-8")) == event
    assert "\u00e9t\u00e9" in body.decode("utf-8")  # UTF-8, not \\u escapes


def test_sse_frame_has_id_event_and_one_line_of_data():
    event = event_json(Change(12, "updated", NOTE.id, NOTE, LATER, TS))
    frame = sse_frame(event)
    assert frame.endswith(b"\n\n")
    lines = frame.decode("utf-8").split("\n")[:-2]
    assert lines[:2] == ["id: 12", "event: note.updated"]
    assert len(lines) == 3 and lines[2].startswith("data: ")  # the body's \n is escaped
    assert json.loads(lines[2][len("data: ") :]) == event


@pytest.mark.parametrize(
    "raw, seq",
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("0", 0),
        ("42", 42),
        (" 42 ", 42),
        ("9223372036854775807", 2**63 - 1),
    ],
)
def test_last_event_id(raw, seq):
    assert parse_last_event_id(raw) == seq


@pytest.mark.parametrize("raw", ["-1", "1.5", "abc", "0x10", "\u0661\u0662", "1" * 20])
def test_last_event_id_refuses_anything_but_a_seq(raw):
    with pytest.raises(ValueError):
        parse_last_event_id(raw)
