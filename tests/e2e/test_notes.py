"""End to end: notes through real gunicorn (two workers), on each notes store."""

import requests


def test_create_read_update_delete_round_trip(live_server, notes_backend):
    server = live_server(env=notes_backend.env)
    notes = server.url + "/notes"

    created = requests.post(notes, json={"title": "e2e", "body": "first"}, timeout=10)
    assert created.status_code == 201
    location = server.url + created.headers["Location"]
    note = created.json()

    read = requests.get(location, timeout=10)
    assert read.status_code == 200 and read.json() == note
    etag = read.headers["ETag"]
    assert (
        requests.get(location, headers={"If-None-Match": etag}, timeout=10).status_code
        == 304
    )
    alias = requests.get(notes, params={"id": note["id"]}, timeout=10)
    assert alias.json() == {"note": note}
    assert requests.get(notes, timeout=10).json()["items"] == [note]

    updated = requests.put(
        location,
        json={"title": "e2e", "body": "second"},
        headers={"If-Match": etag},
        timeout=10,
    )
    assert updated.status_code == 200 and updated.json()["body"] == "second"
    stale = requests.patch(
        location, json={"body": "lost"}, headers={"If-Match": etag}, timeout=10
    )
    assert stale.status_code == 412
    assert stale.headers["Content-Type"] == "application/problem+json"
    patched = requests.patch(
        location,
        json={"body": "third"},
        headers={"If-Match": updated.headers["ETag"]},
        timeout=10,
    )
    assert patched.status_code == 200 and patched.json()["body"] == "third"

    assert requests.delete(location, timeout=10).status_code == 204
    assert requests.get(location, timeout=10).status_code == 404
    ready = requests.get(server.url + "/ready", timeout=10)
    assert ready.json()["backends"]["notes"] == "ok"
    assert "Traceback" not in server.log()
