"""The error contract and the middleware, through HTTP (falcon.testing)."""

import logging

import falcon
import falcon.testing
import marshmallow
import pytest
from marshmallow import fields

from core.logs import RequestIdFilter
from db.errors import Conflict
from db.errors import NotFound
from db.errors import Unavailable
from tests.support.problems import assert_problem
from web.validation import validate


class EchoIn(marshmallow.Schema):
    name = fields.String(required=True, validate=marshmallow.validate.Length(1, 10))


class Probe:
    """A resource that exercises each error path of the contract."""

    @validate(body=EchoIn())
    def on_post(self, req, resp):
        resp.media = req.context.body
        resp.status = falcon.HTTP_201

    def on_get_error(self, req, resp, kind):
        errors = {
            "missing": NotFound("no such thing"),
            "taken": Conflict("taken"),
            "down": Unavailable("store down"),
            "bug": RuntimeError("secret detail"),
        }
        raise errors[kind]


@pytest.fixture
def probe_client(client):
    """The app with the test-only Probe routes; a plain TestClient, since the
    OpenAPI document (rightly) does not describe them."""
    client.app.add_route("/probe", Probe())
    client.app.add_route("/probe/{kind}", Probe(), suffix="error")
    return falcon.testing.TestClient(client.app, headers={"Host": "localhost"})


def test_unknown_path_is_404_problem(client):
    assert_problem(client.simulate_get("/no/such/path"), 404)


def test_wrong_method_is_405_problem_with_allow(client):
    result = client.simulate_delete("/health")
    assert_problem(result, 405)
    assert "GET" in result.headers["allow"]


def test_valid_body_passes(probe_client):
    result = probe_client.simulate_post("/probe", json={"name": "ok"})
    assert result.status_code == 201
    assert result.json == {"name": "ok"}


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": 3}, "name"),
        ({"name": "a", "x": 1}, "x"),
    ],
)
def test_invalid_body_is_422_with_field_errors(probe_client, body, field):
    problem = assert_problem(probe_client.simulate_post("/probe", json=body), 422)
    assert field in problem["errors"]


def test_json_that_is_not_an_object_is_422(probe_client):
    assert_problem(probe_client.simulate_post("/probe", json=[1, 2]), 422)


def test_malformed_json_is_400(probe_client):
    result = probe_client.simulate_post(
        "/probe", body='{"name": ', headers={"Content-Type": "application/json"}
    )
    assert_problem(result, 400)


def test_non_json_write_is_415(probe_client):
    result = probe_client.simulate_post(
        "/probe",
        body="name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(result, 415)


def test_body_over_limit_is_413(make_client):
    client = make_client(max_body_bytes=100)
    result = client.simulate_post("/notes", json={"title": "x" * 200})
    assert_problem(result, 413)


def test_declared_length_over_limit_is_413_without_reading(make_client):
    client = make_client(max_body_bytes=100)
    # The declared length is a lie; the body is never read, so its size does not matter.
    result = client.simulate_post(
        "/notes",
        body="{}",
        headers={"Content-Type": "application/json", "Content-Length": "1000000"},
    )
    assert_problem(result, 413)


@pytest.mark.parametrize(
    "kind, status", [("missing", 404), ("taken", 409), ("down", 503)]
)
def test_domain_errors_map_to_status(probe_client, kind, status):
    assert_problem(probe_client.simulate_get(f"/probe/{kind}"), status)


def test_unexpected_error_is_500_without_details_and_logged(probe_client, caplog):
    with caplog.at_level(logging.ERROR):
        result = probe_client.simulate_get(
            "/probe/bug", headers={"X-Request-ID": "rid-42"}
        )
    problem = assert_problem(result, 500)
    assert "secret detail" not in result.text
    assert "Traceback" not in result.text
    assert result.headers["x-request-id"] == "rid-42"
    record = next(r for r in caplog.records if r.exc_info)
    assert "secret detail" in str(record.exc_info[1])
    assert problem["detail"]


def test_request_id_is_echoed(client):
    assert (
        client.simulate_get("/health", headers={"X-Request-ID": "abc"}).headers[
            "x-request-id"
        ]
        == "abc"
    )


def test_request_id_is_generated_when_absent_or_unusable(client):
    first = client.simulate_get("/health").headers["x-request-id"]
    second = client.simulate_get("/health", headers={"X-Request-ID": "x" * 500})
    assert len(first) == 32
    assert len(second.headers["x-request-id"]) == 32
    assert first != second.headers["x-request-id"]


def test_wrong_method_with_a_non_json_body_is_still_405(client):
    result = client.simulate_post(
        "/health", body="x", headers={"Content-Type": "text/plain"}
    )
    assert_problem(result, 405)


class FailingStore:
    """A store whose write fails the way SQLite does under contention."""

    def on_post(self, req, resp):
        try:
            raise OSError("database is locked")
        except OSError as ex:
            raise Unavailable("SQL database unavailable") from ex


def test_a_503_logs_its_underlying_exception_with_the_request_id(client, caplog):
    client.app.add_route("/failing", FailingStore())
    plain = falcon.testing.TestClient(client.app, headers={"Host": "localhost"})
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.WARNING):
        result = plain.simulate_post("/failing", headers={"X-Request-ID": "rid-503"})
    assert_problem(result, 503)
    assert "locked" not in result.text  # the cause stays in the log
    (record,) = [r for r in caplog.records if r.name == "web.errors"]
    assert record.request_id == "rid-503"
    assert "POST /failing" in record.getMessage()
    assert "OSError: database is locked" in record.getMessage()
    assert record.exc_info[1].args == ("database is locked",)  # with its traceback


class BrokenInput:
    """``wsgi.input`` of a client whose chunked body is malformed."""

    def read(self, size=-1):
        raise ValueError("Invalid chunk size")

    readline = read


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_the_server_cannot_read_is_400(client, chunked):
    env = falcon.testing.create_environ(
        "/notes",
        method="POST",
        host="localhost",
        headers={
            "Authorization": f"Bearer {client.api_key}",
            "Content-Type": "application/json",
            **(
                {"Transfer-Encoding": "chunked"}
                if chunked
                else {"Content-Length": "10"}
            ),
        },
    )
    env["wsgi.input"] = BrokenInput()
    if chunked:
        env.pop("CONTENT_LENGTH", None)
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer.update(status=status, headers={k.lower(): v for k, v in headers})

    body = b"".join(client.app(env, start_response))
    assert answer["status"].startswith("400")
    assert answer["headers"]["content-type"] == "application/problem+json"
    assert b"could not be read" in body
