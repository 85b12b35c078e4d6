"""The FastAPI peer: our three hot paths, as a user of that stack would write them.

Same answers as ours; docs/performance/index.md describes it.
"""

import asyncio
import contextlib
import datetime
import os
import secrets
import sqlite3
import string

import orjson
from fastapi import FastAPI
from fastapi import Request
from fastapi import Response

TITLE_MAX, BODY_MAX = 200, 20000  # as core/notes.py
CODE_ALPHABET = string.ascii_letters + string.digits
SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY, title TEXT, body TEXT,
    created_at TEXT, updated_at TEXT, version INTEGER);
CREATE TABLE IF NOT EXISTS links (code TEXT PRIMARY KEY, url TEXT, expires_at TEXT,
    max_visits INTEGER, visits INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS visits (code TEXT, at TEXT, referrer TEXT, agent TEXT);
"""


@contextlib.asynccontextmanager
async def lifespan(_app: FastAPI):
    flushing = asyncio.get_running_loop().create_task(flush_visits())
    yield
    flushing.cancel()


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
db = sqlite3.connect(
    os.environ.get("PEER_DATABASE", "peer.db"), isolation_level=None, timeout=30
)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.executescript(SCHEMA)
pending_visits = []


def now() -> str:
    moment = datetime.datetime.now(datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def problem(status: int, detail: str) -> Response:
    body = orjson.dumps({"title": detail, "status": status, "detail": detail})
    return Response(body, status, media_type="application/problem+json")


def note_response(row, status: int = 200, headers=None) -> Response:
    note = dict(zip(("id", "title", "body", "created_at", "updated_at"), row))
    headers = {"ETag": f'"{row[5]}"', **(headers or {})}
    return Response(orjson.dumps(note), status, headers, "application/json")


@app.post("/notes")
async def create_note(request: Request) -> Response:
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return problem(400, "The body is not JSON.")
    title, body = data.get("title"), data.get("body", "")
    if set(data) - {"title", "body"}:
        return problem(422, "Unknown field.")
    if not isinstance(title, str) or not title.strip() or len(title) > TITLE_MAX:
        return problem(422, f"title: 1..{TITLE_MAX} characters, not blank.")
    if not isinstance(body, str) or len(body) > BODY_MAX:
        return problem(422, f"body: 0..{BODY_MAX} characters.")
    row = (secrets.token_hex(16), title, body, now(), now(), 1)
    db.execute("INSERT INTO notes VALUES (?, ?, ?, ?, ?, ?)", row)
    return note_response(row, 201, {"Location": f"/notes/{row[0]}"})


@app.get("/notes/{note_id}")
async def get_note(note_id: str, request: Request) -> Response:
    row = db.execute("SELECT * FROM notes WHERE id = ?", (note_id,)).fetchone()
    if row is None:
        return problem(404, "No note has this id.")
    if request.headers.get("if-none-match") == f'"{row[5]}"':
        return Response(status_code=304, headers={"ETag": f'"{row[5]}"'})
    return note_response(row)


@app.post("/links")
async def create_link(request: Request) -> Response:
    data = orjson.loads(await request.body())
    if not str(data.get("url", "")).startswith(("http://", "https://")):
        return problem(422, "url: an http or https URL.")
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(7))
    link = (code, data["url"], data.get("expires_at"), data.get("max_visits"))
    db.execute("INSERT INTO links VALUES (?, ?, ?, ?, 0)", link)
    body = orjson.dumps(dict(zip(("code", "url", "expires_at", "max_visits"), link)))
    return Response(body, 201, {"Location": f"/links/{code}"}, "application/json")


@app.get("/{code}")
async def follow(code: str, request: Request) -> Response:
    row = db.execute(
        "SELECT url, expires_at, max_visits, visits FROM links WHERE code = ?", (code,)
    ).fetchone()
    if row is None:
        return problem(404, "No link has this code.")
    url, expires_at, max_visits, visits = row
    moment = now()
    if expires_at is not None and expires_at <= moment:
        return problem(410, "This link has expired.")
    visit = (
        code,
        moment,
        request.headers.get("referer"),
        request.headers.get("user-agent"),
    )
    if max_visits is None:
        pending_visits.append(visit)
    else:
        counted = db.execute(
            "UPDATE links SET visits = visits + 1 WHERE code = ? AND visits < ?",
            (code, max_visits),
        ).rowcount
        if not counted:
            return problem(410, "This link reached its max_visits.")
        db.execute("INSERT INTO visits VALUES (?, ?, ?, ?)", visit)
    return Response(status_code=302, headers={"Location": url})


async def flush_visits() -> None:
    while True:
        await asyncio.sleep(1.0)
        batch = pending_visits[:]
        del pending_visits[: len(batch)]
        if batch:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO visits VALUES (?, ?, ?, ?)", batch)
            counts = {}
            for visit in batch:
                counts[visit[0]] = counts.get(visit[0], 0) + 1
            db.executemany(
                "UPDATE links SET visits = visits + ? WHERE code = ?",
                [(n, code) for code, n in counts.items()],
            )
            db.execute("COMMIT")
