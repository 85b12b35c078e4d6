"""The notes HTTP API (falcon.testing), on the embedded store and RethinkDB if set."""

import pytest
from openapi_spec_validator import validate as validate_openapi

from tests.support.problems import assert_problem

MISSING_ID = "0" * 32
MALFORMED_IDS = ["nope", "0" * 31, "0" * 33, "Z" * 32, "0" * 300, "%20"]


@pytest.fixture
def api(notes_backend, make_client):
    """A TestClient on each notes store."""
    return make_client(**notes_backend.overrides)


def create_note(api, title="title", body="body"):
    result = api.simulate_post("/notes", json={"title": title, "body": body})
    assert result.status_code == 201, result.text
    return result


# Create


def test_post_creates_201_with_location_etag_and_the_note(api):
    result = create_note(api, "Groceries", "milk")
    note = result.json
    assert set(note) == {"id", "title", "body", "created_at", "updated_at"}
    assert (note["title"], note["body"]) == ("Groceries", "milk")
    assert result.headers["location"] == f"/notes/{note['id']}"
    assert result.headers["etag"] == '"1"'
    assert note["created_at"] == note["updated_at"]
    assert note["created_at"].endswith("Z")
    assert api.simulate_get(result.headers["location"]).json == note


def test_post_without_body_field_stores_an_empty_body(api):
    assert api.simulate_post("/notes", json={"title": "t"}).json["body"] == ""


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": None}, "title"),
        ({"title": 42}, "title"),
        ({"title": ["a"]}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "ok", "body": 3}, "body"),
        ({"title": "ok", "body": "x" * 20001}, "body"),
        ({"title": "ok", "tags": ["x"]}, "tags"),
        ({"title": "ok", "id": "0" * 32}, "id"),
    ],
)
def test_post_invalid_bodies_are_422_naming_the_field(api, payload, field):
    problem = assert_problem(api.simulate_post("/notes", json=payload), 422)
    assert field in problem["errors"]


def test_post_limits_are_inclusive(api):
    result = api.simulate_post("/notes", json={"title": "x" * 200, "body": "y" * 20000})
    assert result.status_code == 201


def test_post_a_json_array_is_422(api):
    assert_problem(api.simulate_post("/notes", json=[{"title": "t"}]), 422)


def test_post_malformed_json_is_400(api):
    result = api.simulate_post(
        "/notes", body='{"title": "x"', headers={"Content-Type": "application/json"}
    )
    assert_problem(result, 400)


def test_post_non_json_is_415(api):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    result = api.simulate_post("/notes", body="title=x", headers=form)
    assert_problem(result, 415)


def test_body_over_the_byte_limit_is_413(make_client):
    client = make_client(max_body_bytes=1000)
    result = client.simulate_post("/notes", json={"title": "t", "body": "x" * 2000})
    assert_problem(result, 413)


# Read


def test_get_item_and_the_seed_alias_agree(api):
    note = create_note(api).json
    item = api.simulate_get(f"/notes/{note['id']}")
    alias = api.simulate_get("/notes", params={"id": note["id"]})
    assert item.status_code == alias.status_code == 200
    assert item.json == note
    assert alias.json == {"note": note}
    assert item.headers["etag"] == alias.headers["etag"] == '"1"'


@pytest.mark.parametrize("note_id", [MISSING_ID] + MALFORMED_IDS)
def test_unknown_or_malformed_ids_are_404_everywhere(api, note_id):
    path = f"/notes/{note_id}"
    assert_problem(api.simulate_get(path), 404)
    assert_problem(api.simulate_get("/notes", params={"id": note_id}), 404)
    assert_problem(api.simulate_put(path, json={"title": "t", "body": "b"}), 404)
    assert_problem(api.simulate_patch(path, json={"title": "t"}), 404)
    assert_problem(api.simulate_delete(path), 404)


def test_if_none_match_with_the_current_etag_is_304(api):
    note = create_note(api).json
    forms = ((f"/notes/{note['id']}", None), ("/notes", {"id": note["id"]}))
    for path, params in forms:
        for tag in ('"1"', 'W/"1"', '"7", "1"', "*"):
            result = api.simulate_get(
                path, params=params, headers={"If-None-Match": tag}
            )
            assert result.status_code == 304, tag
            assert result.headers["etag"] == '"1"'
            assert result.text == ""


def test_if_none_match_with_an_old_etag_is_200(api):
    note = create_note(api).json
    api.simulate_patch(f"/notes/{note['id']}", json={"body": "new"})
    result = api.simulate_get(f"/notes/{note['id']}", headers={"If-None-Match": '"1"'})
    assert result.status_code == 200
    assert result.headers["etag"] == '"2"'
    assert result.json["body"] == "new"


# List


def test_list_is_newest_first_and_follows_next_links(api):
    ids = [create_note(api, f"n{i}").json["id"] for i in range(5)]
    result = api.simulate_get("/notes", params={"limit": 2})
    seen = []
    while True:
        assert result.status_code == 200
        seen += [note["id"] for note in result.json["items"]]
        if result.json["next"] is None:
            break
        assert "limit=2" in result.json["next"]
        path, _, query = result.json["next"].partition("?")
        result = api.simulate_get(path, query_string=query)
    assert seen == list(reversed(ids))


def test_list_pages_stay_stable_while_notes_are_added(api):
    ids = [create_note(api, f"n{i}").json["id"] for i in range(4)]
    first = api.simulate_get("/notes", params={"limit": 2}).json
    create_note(api, "added meanwhile")
    path, _, query = first["next"].partition("?")
    second = api.simulate_get(path, query_string=query).json
    assert [n["id"] for n in first["items"] + second["items"]] == list(reversed(ids))
    assert second["next"] is None


def test_empty_list(api):
    assert api.simulate_get("/notes").json == {"items": [], "next": None}


def test_default_limit_is_50(api):
    for i in range(51):
        create_note(api, f"n{i}")
    page = api.simulate_get("/notes").json
    assert len(page["items"]) == 50 and page["next"] is not None


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": -1}, "cursor"),
    ],
)
def test_bad_list_parameters_are_422(api, params, field):
    problem = assert_problem(api.simulate_get("/notes", params=params), 422)
    assert field in problem["errors"]


# Replace, patch, delete


def test_put_replaces_both_fields(api):
    note = create_note(api, "old", "old").json
    result = api.simulate_put(
        f"/notes/{note['id']}", json={"title": "new", "body": "text"}
    )
    assert result.status_code == 200
    assert result.headers["etag"] == '"2"'
    assert (result.json["title"], result.json["body"]) == ("new", "text")
    assert result.json["created_at"] == note["created_at"]
    assert result.json["updated_at"] >= note["updated_at"]


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"title": "only"}, "body"),
        ({"body": "only"}, "title"),
        ({"title": "", "body": ""}, "title"),
        ({"title": "t", "body": "b", "x": 1}, "x"),
    ],
)
def test_put_needs_both_fields_and_nothing_else(api, payload, field):
    note = create_note(api).json
    result = api.simulate_put(f"/notes/{note['id']}", json=payload)
    problem = assert_problem(result, 422)
    assert field in problem["errors"]


def test_patch_changes_only_what_is_given(api):
    note = create_note(api, "keep", "old").json
    result = api.simulate_patch(f"/notes/{note['id']}", json={"body": "new"})
    assert result.status_code == 200
    assert (result.json["title"], result.json["body"]) == ("keep", "new")
    assert result.headers["etag"] == '"2"'


def test_patch_accepts_merge_patch_media_type(api):
    note = create_note(api).json
    merge_patch = {"Content-Type": "application/merge-patch+json"}
    result = api.simulate_patch(
        f"/notes/{note['id']}", body='{"title": "merged"}', headers=merge_patch
    )
    assert result.status_code == 200 and result.json["title"] == "merged"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "_schema"),
        ({"title": ""}, "title"),
        ({"body": None}, "body"),
        ({"body": "x" * 20001}, "body"),
        ({"title": 1}, "title"),
        ({"id": "x"}, "id"),
    ],
)
def test_patch_invalid_bodies_are_422(api, payload, field):
    note = create_note(api).json
    result = api.simulate_patch(f"/notes/{note['id']}", json=payload)
    problem = assert_problem(result, 422)
    assert field in problem["errors"]


def test_delete_is_204_then_404(api):
    note = create_note(api).json
    result = api.simulate_delete(f"/notes/{note['id']}")
    assert result.status_code == 204 and result.text == ""
    assert_problem(api.simulate_get(f"/notes/{note['id']}"), 404)
    assert_problem(api.simulate_delete(f"/notes/{note['id']}"), 404)
    assert api.simulate_get("/notes").json["items"] == []


# If-Match: no lost updates


def test_second_editor_with_a_stale_etag_gets_412(api):
    note = create_note(api).json
    path = f"/notes/{note['id']}"
    etag = api.simulate_get(path).headers["etag"]
    first = api.simulate_put(
        path, json={"title": "A", "body": "a"}, headers={"If-Match": etag}
    )
    assert first.status_code == 200
    second = api.simulate_put(
        path, json={"title": "B", "body": "b"}, headers={"If-Match": etag}
    )
    assert_problem(second, 412)
    assert api.simulate_get(path).json["title"] == "A"
    assert_problem(
        api.simulate_patch(path, json={"body": "x"}, headers={"If-Match": etag}), 412
    )
    assert_problem(api.simulate_delete(path, headers={"If-Match": etag}), 412)
    fresh = first.headers["etag"]
    assert (
        api.simulate_patch(
            path, json={"body": "x"}, headers={"If-Match": fresh}
        ).status_code
        == 200
    )


@pytest.mark.parametrize(
    "header, status",
    [
        ('"1"', 200),
        ('"5", "1"', 200),
        ("*", 200),
        ('W/"1"', 412),
        ('"one"', 412),
    ],
)
def test_if_match_forms(api, header, status):
    note = create_note(api).json
    result = api.simulate_patch(
        f"/notes/{note['id']}", json={"body": "x"}, headers={"If-Match": header}
    )
    assert result.status_code == status


def test_delete_with_the_current_etag_is_204(api):
    result = create_note(api)
    path = result.headers["location"]
    assert (
        api.simulate_delete(
            path, headers={"If-Match": result.headers["etag"]}
        ).status_code
        == 204
    )


# Documentation and readiness


def test_openapi_documents_every_notes_operation(client):
    document = client.simulate_get("/openapi.json").json
    validate_openapi(document)
    paths = document["paths"]
    assert set(paths["/notes"]) >= {"get", "post"}
    assert set(paths["/notes/{note_id}"]) >= {"get", "put", "patch", "delete"}
    assert "201" in paths["/notes"]["post"]["responses"]
    assert "412" in paths["/notes/{note_id}"]["put"]["responses"]
    assert "422" in paths["/notes/{note_id}"]["patch"]["responses"]


def test_ready_checks_the_notes_store(api):
    result = api.simulate_get("/ready")
    assert result.json["backends"]["notes"] == "ok"
