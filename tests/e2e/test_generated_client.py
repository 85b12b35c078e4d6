"""A Python client generated from ``/openapi.json`` loses nothing.

openapi-python-client writes a client from the document into a temporary
directory (never kept), once per session, and must report no warning (each
one is an operation, a response or a schema it left out). Then, against
real gunicorn, the client creates a note, reads it, lists it, patches it
with ``If-Match``, deletes it, and creates a short link and follows it.
Every answer must come back as the typed object the document promises,
with every field set (no ``Unset``) and no field of the JSON left behind.

The generator installs under CPython only (its pydantic-core does not build
under PyPy 3.9), and the code it writes needs Python 3.11 (``X | Y``
annotations, ``datetime.fromisoformat`` of a ``Z``). Under PyPy the test
takes the generator of the project's CPython virtualenv (``make lint`` and
``make test PY=python3`` install it) and runs the round trip under that
CPython, against the PyPy server.
"""

import datetime
import importlib
import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import attrs
import pytest

from tests.support.live import ROOT
from tests.support.live import make_key

GENERATOR = "openapi-python-client"
PACKAGE = "generated_api_client"
#: The generator's settings. No post hooks: formatting the generated code
#: (with ruff) changes nothing it does. application/x-ndjson is text, as the
#: document's string schema says; the generator reads only JSON, text/* and
#: binary media types on its own.
CONFIG = f"""\
project_name_override: {PACKAGE}
package_name_override: {PACKAGE}
post_hooks: []
content_type_overrides:
  application/x-ndjson: text/plain
"""
#: The generated code's own floor (see the module docstring).
CLIENT_PYTHON = (3, 11)
METHODS = ("get", "post", "put", "patch", "delete")


def _generator() -> Optional[Path]:
    """This interpreter's generator, else the CPython virtualenv's, else PATH's."""
    for candidate in (
        Path(sys.executable).parent / GENERATOR,
        ROOT / ".venv" / "python3" / "bin" / GENERATOR,
    ):
        if candidate.is_file():
            return candidate
    found = shutil.which(GENERATOR)
    return Path(found) if found else None


class Generated:
    """The generated package: where it is, what the generator said, who runs it."""

    def __init__(self, generator: Path, spec: dict, output: str, directory: Path):
        self.generator = generator
        self.spec = spec
        self.output = output
        self.directory = directory  # holds the package PACKAGE

    def operation_modules(self):
        return sorted((self.directory / PACKAGE / "api").glob("*/*.py"))


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> Generated:
    generator = _generator()
    if generator is None:
        pytest.skip(
            f"{GENERATOR} is not installed: it installs under CPython only "
            "(requirements-dev.txt); `make test PY=python3` or `make lint` puts "
            "it in .venv/python3, which the PyPy run uses too"
        )
    directory = tmp_path_factory.mktemp("generated-client")
    spec_text = subprocess.run(
        [sys.executable, "-m", "api", "openapi"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    spec_path = directory / "openapi.json"
    spec_path.write_text(spec_text)
    config_path = directory / "config.yaml"
    config_path.write_text(CONFIG)
    run = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(spec_path),
            "--config",
            str(config_path),
            "--meta",
            "none",
            "--output-path",
            str(directory / PACKAGE),
        ],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    return Generated(generator, json.loads(spec_text), output, directory)


def test_the_generator_leaves_nothing_out(generated):
    assert "warning" not in generated.output.lower(), generated.output
    operation_ids = [
        item[method]["operationId"]
        for item in generated.spec["paths"].values()
        for method in METHODS
        if method in item
    ]
    modules = [
        path.stem for path in generated.operation_modules() if path.stem != "__init__"
    ]
    assert len(modules) == len(operation_ids) >= 39
    assert "get_notes_item" in modules and "get_redirect" in modules


def test_round_trip_with_the_generated_client(generated, live_server, tmp_path):
    key = make_key(tmp_path, "write")
    server = live_server(env={"VISIT_FLUSH_INTERVAL": "0", "AUTH": "on"})
    if sys.version_info >= CLIENT_PYTHON:
        _round_trip_here(generated.directory, server.url, key)
    else:
        _round_trip_under(generated.generator.parent / "python", generated, server, key)
    assert "Traceback" not in server.log()


def _round_trip_here(directory: Path, base_url: str, key: str) -> None:
    sys.path.insert(0, str(directory))
    try:
        round_trip(PACKAGE, base_url, key)
    finally:
        sys.path.remove(str(directory))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _round_trip_under(python: Path, generated: Generated, server, key: str) -> None:
    """The round trip under ``python`` (the generator's own interpreter)."""
    assert python.is_file(), f"no interpreter beside {generated.generator}"
    script = (
        "import sys; sys.path[:0] = sys.argv[1:3]; "
        "from tests.e2e.test_generated_client import round_trip; "
        "round_trip(*sys.argv[3:])"
    )
    run = subprocess.run(
        [str(python), "-c", script, str(ROOT), str(generated.directory)]
        + [PACKAGE, server.url, key],
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
