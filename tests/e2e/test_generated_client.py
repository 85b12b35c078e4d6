"""The Python client package of ``make clients`` loses nothing.

``clients/generate.py`` (what ``make clients`` runs) writes the package
from ``/openapi.json`` into a temporary directory, once per session
(tests/support/clients.py), and the generator must report no warning (each
one is an operation, a response or a schema it left out). Its wheel carries
the API's version and the ``fpa`` command. Then, against real gunicorn,
the installed wheel creates a note, reads it, lists it, patches it with
``If-Match``, deletes it, and creates a short link and follows it. Every
answer must come back as the typed object the document promises, with every
field set (no ``Unset``) and no field of the JSON left behind.

The generated code needs Python 3.11 (``X | Y`` annotations,
``datetime.fromisoformat`` of a ``Z``): under PyPy the round trip runs
under the CPython that built the package, against the PyPy server.
"""

import datetime
import importlib
import inspect
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import attrs

from core.version import __version__
from tests.support.clients import COMMAND
from tests.support.clients import NAME
from tests.support.clients import PACKAGE
from tests.support.live import ROOT
from tests.support.live import make_key

#: The generated code's own floor (see the module docstring).
CLIENT_PYTHON = (3, 11)
METHODS = ("get", "post", "put", "patch", "delete")


def test_the_generator_leaves_nothing_out(python_client, openapi_document):
    said = [line for line in python_client.output.splitlines() if line[:2] != "+ "]
    assert "warning" not in "\n".join(said).lower(), python_client.output
    spec = json.loads(openapi_document.read_text())
    operation_ids = [
        item[method]["operationId"]
        for item in spec["paths"].values()
        for method in METHODS
        if method in item
    ]
    modules = [
        path.stem
        for path in python_client.operation_modules()
        if path.stem != "__init__"
    ]
    assert len(modules) == len(operation_ids) >= 39
    assert "get_notes_item" in modules and "get_redirect" in modules


def test_the_wheel_carries_the_api_version_and_the_command(python_client):
    wheel = python_client.wheel
    assert wheel.name == f"{PACKAGE}-{__version__}-py3-none-any.whl"
    info = f"{PACKAGE}-{__version__}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        names = archive.namelist()
    assert f"Name: {NAME}\n" in metadata
    assert f"Version: {__version__}\n" in metadata
    assert "Requires-Python: >=3.11" in metadata
    assert f"{COMMAND} = {PACKAGE}.cli:main" in entry_points
    assert f"{PACKAGE}/cli.py" in names and f"{PACKAGE}/py.typed" in names
    assert (python_client.site / "bin" / COMMAND).is_file()


def test_round_trip_with_the_generated_client(python_client, live_server, tmp_path):
    key = make_key(tmp_path, "write")
    server = live_server(env={"VISIT_FLUSH_INTERVAL": "0", "AUTH": "on"}, workers=1)
    if sys.version_info >= CLIENT_PYTHON:
        _round_trip_here(python_client.site, server.url, key)
    else:
        _round_trip_under(python_client.python, python_client.site, server.url, key)
    assert "Traceback" not in server.log()


def _round_trip_here(site: Path, base_url: str, key: str) -> None:
    sys.path.insert(0, str(site))
    try:
        round_trip(PACKAGE, base_url, key)
    finally:
        sys.path.remove(str(site))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _round_trip_under(python: Path, site: Path, base_url: str, key: str) -> None:
    """The round trip under ``python``, the CPython that built the package."""
    script = (
        "import sys; sys.path[:0] = sys.argv[1:3]; "
        "from tests.e2e.test_generated_client import round_trip; "
        "round_trip(*sys.argv[3:])"
    )
    run = subprocess.run(
        [str(python), "-c", script, str(ROOT), str(site), PACKAGE, base_url, key],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"the round trip under {python}:\n{run.stderr}"


def round_trip(package: str, base_url: str, key: str) -> None:
    """Create, read, list, patch (If-Match), delete a note; shorten and follow a URL.

    Runs under the interpreter that can import the generated ``package``.
    """

    def module(name: str):
        return importlib.import_module(f"{package}.{name}")

    models = module("models")
    unset = module("types").Unset
    notes = {
        name: module(f"api.notes.{name}")
        for name in ("post_notes", "get_notes_item", "get_notes")
        + ("patch_notes_item", "delete_notes_item")
    }
    links = {
        name: module(f"api.links.{name}")
        for name in ("post_links", "get_redirect", "get_links_item")
    }
    client = module("client").AuthenticatedClient(
        base_url=base_url, token=key, raise_on_unexpected_status=True
    )

    def answer(response, status: int, model):
        """The typed answer, checked: its class, no field lost, every one set.

        Problems are the exception to the last: ``errors`` is only in 422s.
        """
        assert response.status_code == status, response.content
        parsed = response.parsed
        assert isinstance(parsed, model), parsed
        if model is not models.Problem:
            assert_complete(parsed, unset)
        wire = json.loads(response.content)
        assert set(parsed.to_dict()) == set(wire), "fields left behind"
        return parsed

    created = notes["post_notes"].sync_detailed(
        client=client, body=models.NoteCreate(title="Groceries", body="milk, eggs")
    )
    note = answer(created, 201, models.NoteOut)
    assert (note.title, note.body) == ("Groceries", "milk, eggs")
    assert len(note.id) == 32
    assert note.created_at == note.updated_at
    assert note.created_at.tzinfo is not None
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs(note.created_at - now) < datetime.timedelta(minutes=5)
    assert created.headers["Location"] == f"/notes/{note.id}"
    assert created.headers["ETag"] == '"1"'

    read = notes["get_notes_item"].sync_detailed(client=client, note_id=note.id)
    assert answer(read, 200, models.NoteOut) == note
    etag = read.headers["ETag"]
    fresh = notes["get_notes_item"].sync_detailed(
        client=client, note_id=note.id, if_none_match=etag
    )
    assert fresh.status_code == 304

    listed = answer(
        notes["get_notes"].sync_detailed(client=client, limit=10), 200, models.NoteList
    )
    assert listed.items == [note] and listed.next_ is None
    # The list takes no ?id=: the alias's answer is not a list.
    assert "id" not in inspect.signature(notes["get_notes"].sync_detailed).parameters
    # The seed alias is not the list's: its shape has a model of its own.
    alias = client.get_httpx_client().get("/notes", params={"id": note.id})
    assert models.NoteEnvelope.from_dict(alias.json()).note == note

    def patch(body: str, if_match: str):
        change = models.NotePatch(body=body)
        return notes["patch_notes_item"].sync_detailed(
            client=client, note_id=note.id, body=change, if_match=if_match
        )

    patched = patch("just milk", etag)
    changed = answer(patched, 200, models.NoteOut)
    assert changed == attrs.evolve(
        note, body="just milk", updated_at=changed.updated_at
    )
    assert note.updated_at < changed.updated_at
    assert patched.headers["ETag"] == '"2"'
    assert answer(patch("lost", etag), 412, models.Problem).status == 412

    deleted = notes["delete_notes_item"].sync_detailed(
        client=client, note_id=note.id, if_match=patched.headers["ETag"]
    )
    assert deleted.status_code == 204
    gone = notes["get_notes_item"].sync_detailed(client=client, note_id=note.id)
    assert answer(gone, 404, models.Problem).status == 404

    url = "https://example.com/spring?ref=mail"
    made = links["post_links"].sync_detailed(client=client, body=models.LinkIn(url=url))
    link = answer(made, 201, models.LinkOut)
    assert (link.url, link.visits) == (url, 0)
    assert link.expires_at is None and link.max_visits is None
    assert link.short_url.endswith("/" + link.code)
    assert made.headers["Location"] == f"/links/{link.code}"

    followed = links["get_redirect"].sync_detailed(client=client, code=link.code)
    assert followed.status_code == 302
    assert followed.headers["Location"] == url
    read_link = links["get_links_item"].sync_detailed(client=client, code=link.code)
    assert answer(read_link, 200, models.LinkOut).visits == 1


def assert_complete(value, unset) -> None:
    """No attribute of a generated model (nested ones too) is or may be ``unset``.

    The annotation shows what the document promised: ``str | Unset`` for a
    field it does not mark required.
    """
    for field in attrs.fields(type(value)):
        where = f"{type(value).__name__}.{field.name}"
        assert "Unset" not in str(field.type), f"{where}: {field.type}"
        item = getattr(value, field.name)
        assert not isinstance(item, unset), where
        for inner in item if isinstance(item, list) else [item]:
            if attrs.has(type(inner)):
                assert_complete(inner, unset)
