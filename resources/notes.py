"""Notes: create, read, list, replace, patch and delete (``/notes``).

Every note response carries an ``ETag`` (the note's version). Writes honour
``If-Match`` (412 when the note has moved on; the store checks and writes
in one atomic step), reads honour ``If-None-Match`` (304).
"""

from typing import List
from typing import Optional

import falcon
import marshmallow
from marshmallow import fields
from marshmallow import validate as check

from core.notes import BODY_MAX
from core.notes import TITLE_MAX
from core.notes import Note
from core.notes import note_json
from db.notes.base import NotesStore
from web.auth import READ
from web.auth import WRITE
from web.auth import requires
from web.conditional import if_match_versions
from web.fields import INT64_MAX
from web.fields import cursor_field
from web.openapi import ResponseSchema
from web.openapi import parameter
from web.openapi import query_alias
from web.paging import limit_field
from web.paging import next_link
from web.paging import page_body
from web.paging import page_schema
from web.validation import QuerySchema
from web.validation import validate


def _not_blank(value: str) -> None:
    if not value.strip():
        raise marshmallow.ValidationError("Must not be blank.")


def _title(**kwargs) -> fields.String:
    return fields.String(
        validate=[check.Length(1, TITLE_MAX), _not_blank],
        metadata={"description": f"1..{TITLE_MAX} characters"},
        **kwargs,
    )


def _body(**kwargs) -> fields.String:
    return fields.String(
        validate=check.Length(max=BODY_MAX),
        metadata={"description": f"0..{BODY_MAX} characters"},
        **kwargs,
    )


class NoteCreate(marshmallow.Schema):
    """Body of ``POST /notes``."""

    title = _title(required=True)
    body = _body(load_default="")


class NoteReplace(marshmallow.Schema):
    """Body of ``PUT /notes/{id}``: both fields."""

    title = _title(required=True)
    body = _body(required=True)


class NotePatch(marshmallow.Schema):
    """Body of ``PATCH /notes/{id}``: the fields to change, at least one."""

    title = _title()
    body = _body()

    @marshmallow.validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise marshmallow.ValidationError(
                "Give at least one of title, body.", field_name="_schema"
            )


class NoteOut(ResponseSchema):
    """A note as the API shows it."""

    id = fields.String(metadata={"description": "32 hex digits"})
    title = fields.String()
    body = fields.String()
    created_at = fields.String(metadata={"format": "date-time"})
    updated_at = fields.String(metadata={"format": "date-time"})


class NoteEnvelope(ResponseSchema):
    """``GET /notes?id=``: the note under ``note`` (the seed tutorial's shape)."""

    note = fields.Nested(NoteOut)


class NoteListQuery(QuerySchema):
    """Query of ``GET /notes``."""

    limit = limit_field(50, 500)
    cursor = cursor_field(
        "from a previous page's next link", minimum=0, maximum=INT64_MAX
    )


class NoteAliasQuery(QuerySchema):
    """Query of the seed alias ``GET /notes?id=``."""

    id = fields.String(required=True, metadata={"description": "the note's id"})


NoteList = page_schema("NoteList", NoteOut())

#: Examples of the OpenAPI document: one real note, as the API answers it.
NOTE_ID = "5f0c3b1e9a3d4c8e8b1f2a7d6c5e4b3a"
NOTE = {
    "id": NOTE_ID,
    "title": "Groceries",
    "body": "milk, eggs",
    "created_at": "2025-01-31T12:00:00.123Z",
    "updated_at": "2025-01-31T12:00:00.123Z",
}
NOTE_V2 = {
    **NOTE,
    "body": "milk, eggs, bread",
    "updated_at": "2025-01-31T12:05:42.801Z",
}
NOTE_V3 = {**NOTE_V2, "body": "just milk", "updated_at": "2025-01-31T12:07:10.045Z"}


_NOTE_ID_PATTERN = "^[0-9a-f]{32}$"


def _document_note_id(resource, operation: dict) -> None:
    parameter(operation, "note_id")["schema"]["pattern"] = _NOTE_ID_PATTERN


def _document_alias_id(resource, operation: dict) -> None:
    parameter(operation, "id")["schema"]["pattern"] = _NOTE_ID_PATTERN


def _not_modified(req: falcon.Request, note: Note) -> bool:
    """Whether If-None-Match names this version (weak comparison)."""
    tags: Optional[List[str]] = req.if_none_match
    return tags is not None and ("*" in tags or note.etag in tags)


class Notes:
    """``/notes`` and ``/notes/{note_id}`` (suffix ``item``).

    Args:
        store: The notes store (SQL or RethinkDB).
    """

    def __init__(self, store: NotesStore):
        self._store = store

    def _show(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        note: Note,
        envelope: bool = False,
    ) -> None:
        resp.etag = note.etag
        if _not_modified(req, note):
            resp.status = falcon.HTTP_304
            return
        resp.media = {"note": note_json(note)} if envelope else note_json(note)

    @requires(READ)
    @validate(
        query=NoteAliasQuery(),
        response=NoteEnvelope(),
        errors=(404, 503),
        also={304: None},
        headers=("If-None-Match",),
        response_headers={200: ("ETag",), 304: ("ETag",)},
        operation_id="getNotesById",
        examples={"id": NOTE_ID, 200: {"note": NOTE}},
        document=_document_alias_id,
    )
    def _get_envelope(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Read a note as {"note": {...}} (the seed tutorial's GET /notes?id=).

        The same note, ETag and 304 as getNotesItem (`GET /notes/{note_id}`),
        under `note`. It shares its path and method with the list, which
        OpenAPI 3.0 cannot give two operations, so it is this path's
        `x-get-alias`: clients generated from the document call getNotesItem.
        """
        self._show(req, resp, self._store.get(req.context.query["id"]), envelope=True)

    @requires(READ)
    @query_alias("id", _get_envelope)
    @validate(
        query=NoteListQuery(),
        response=NoteList,
        errors=(503,),
        examples={
            "limit": 2,
            200: {"items": [NOTE], "next": "/notes?limit=2&cursor=7"},
        },
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List notes, newest first.

        Cursor pagination: follow `next` until it is null; notes added
        meanwhile never shift a page. With `?id=`, the seed tutorial's alias
        answers one note as `{"note": {...}}` instead: the operation
        getNotesById, under this path's `x-get-alias` (`GET /notes/{note_id}`
        answers the same note).
        """
        query = req.context.query
        page = self._store.list_page(query["limit"], query.get("cursor"))
        resp.media = page_body(
            [note_json(note) for note in page.notes],
            None
            if page.next_cursor is None
            else next_link(req, cursor=page.next_cursor),
        )

    @requires(WRITE)
    @validate(
        body=NoteCreate(),
        response=NoteOut(),
        status=201,
        errors=(503,),
        response_headers={201: ("Location", "ETag")},
        examples={"body": {"title": "Groceries", "body": "milk, eggs"}, 201: NOTE},
    )
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Create a note."""
        body = req.context.body
        note = self._store.create(body["title"], body["body"])
        resp.status = falcon.HTTP_201
        resp.location = f"/notes/{note.id}"
        resp.etag = note.etag
        resp.media = note_json(note)

    @requires(READ)
    @validate(
        response=NoteOut(),
        errors=(404, 503),
        also={304: None},
        headers=("If-None-Match",),
        response_headers={200: ("ETag",), 304: ("ETag",)},
        examples={"note_id": NOTE_ID, 200: NOTE},
        document=_document_note_id,
    )
    def on_get_item(
        self, req: falcon.Request, resp: falcon.Response, note_id: str
    ) -> None:
        """Read a note.

        If-None-Match with its ETag: 304 Not Modified.
        """
        self._show(req, resp, self._store.get(note_id))

    @requires(WRITE)
    @validate(
        body=NoteReplace(),
        response=NoteOut(),
        errors=(404, 412, 503),
        headers=("If-Match",),
        response_headers={200: ("ETag",)},
        examples={
            "note_id": NOTE_ID,
            "body": {"title": "Groceries", "body": "milk, eggs, bread"},
            200: NOTE_V2,
        },
        document=_document_note_id,
    )
    def on_put_item(
        self, req: falcon.Request, resp: falcon.Response, note_id: str
    ) -> None:
        """Replace a note's title and body.

        If-Match with the ETag you read: 412 if the note changed since.
        """
        body = req.context.body
        note = self._store.replace(
            note_id, body["title"], body["body"], if_versions=if_match_versions(req)
        )
        resp.etag = note.etag
        resp.media = note_json(note)

    @requires(WRITE)
    @validate(
        body=NotePatch(),
        response=NoteOut(),
        errors=(404, 412, 503),
        headers=("If-Match",),
        response_headers={200: ("ETag",)},
        examples={"note_id": NOTE_ID, "body": {"body": "just milk"}, 200: NOTE_V3},
        document=_document_note_id,
    )
    def on_patch_item(
        self, req: falcon.Request, resp: falcon.Response, note_id: str
    ) -> None:
        """Change some of a note's fields.

        If-Match with the ETag you read: 412 if the note changed since.
        """
        note = self._store.patch(
            note_id, req.context.body, if_versions=if_match_versions(req)
        )
        resp.etag = note.etag
        resp.media = note_json(note)

    @requires(WRITE)
    @validate(
        status=204,
        errors=(404, 412, 503),
        headers=("If-Match",),
        examples={"note_id": NOTE_ID},
        document=_document_note_id,
    )
    def on_delete_item(
        self, req: falcon.Request, resp: falcon.Response, note_id: str
    ) -> None:
        """Delete a note.

        If-Match with the ETag you read: 412 if the note changed since.
        """
        self._store.delete(note_id, if_versions=if_match_versions(req))
        resp.status = falcon.HTTP_204
