"""``fpa``: notes, short links and the change stream from the command line.

Built on the client generated beside it (``make clients`` copies this file
into the package). It reads ``API_URL`` (default http://127.0.0.1:8000),
``API_KEY`` and, for ``follow``, ``STREAM_URL`` (the push worker, default
http://127.0.0.1:8001). Notes and events are printed as the API sends them,
one JSON object per line; ``shorten`` prints the short URL. A refusal is
printed to stderr as ``fpa: STATUS TITLE: DETAIL``, and the exit status is 1.
"""

import argparse
import datetime
import json
import os
import sys
import time
import urllib.parse
from typing import Iterable
from typing import Iterator
from typing import Optional
from typing import Tuple

import httpx

from .api.links import post_links
from .api.notes import get_notes
from .api.notes import get_notes_item
from .api.notes import post_notes
from .client import AuthenticatedClient
from .client import Client
from .models import LinkIn
from .models import NoteCreate
from .types import UNSET

#: Seconds without a byte before the stream counts as lost: the push worker
#: sends a keep-alive comment every 15 s.
STREAM_READ_TIMEOUT = 45.0


class Refused(Exception):
    """An answer the command cannot use: its message is for the user."""


class Lost(Exception):
    """The stream failed on the server's side: worth connecting again."""


def main(argv: Optional[list] = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except Refused as error:
        warn(str(error))
        return 1
    except httpx.TransportError as error:
        warn(f"{error.request.url}: {error}")
        return 1
    except httpx.InvalidURL as error:
        warn(f"check API_URL and STREAM_URL: {error}")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="fpa",
        description=(
            "Notes, short links and the change stream of a Falcon PyPy API. "
            "Set API_URL (default http://127.0.0.1:8000), API_KEY and, for "
            "follow, STREAM_URL (default http://127.0.0.1:8001)."
        ),
    )
    commands = top.add_subparsers(dest="command", required=True)

    notes = commands.add_parser("notes", help="create, get and list notes")
    actions = notes.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a note; prints it")
    create.add_argument("title")
    create.add_argument("body", nargs="?", default="", help="'-' reads stdin")
    create.set_defaults(run=create_note)
    get = actions.add_parser("get", help="print one note")
    get.add_argument("id")
    get.set_defaults(run=get_note)
    listing = actions.add_parser("list", help="print notes, newest first")
    listing.add_argument("--limit", type=int, default=50, help="per page (1..500)")
    listing.add_argument("--all", action="store_true", help="every page")
    listing.set_defaults(run=list_notes)

    shorten = commands.add_parser("shorten", help="shorten a URL; prints the link")
    shorten.add_argument("url")
    shorten.add_argument("--alias", help="the code to use instead of a random one")
    shorten.add_argument("--max-visits", type=int)
    shorten.add_argument(
        "--expires-at", type=datetime.datetime.fromisoformat, help="ISO 8601 time"
    )
    shorten.set_defaults(run=shorten_url)

    follow = commands.add_parser(
        "follow", help="print the note changes as they happen (SSE)"
    )
    follow.add_argument(
        "--after", type=int, help="first the changes after this event id"
    )
    follow.add_argument("--count", type=int, help="stop after this many events")
    follow.set_defaults(run=follow_stream)
    return top


def api_client():
    base_url = os.environ.get("API_URL", "http://127.0.0.1:8000")
    key = os.environ.get("API_KEY", "")
    if key:
        return AuthenticatedClient(base_url=base_url, token=key)
    return Client(base_url=base_url)


def checked(response, status: int = 200):
    """The parsed answer when the status is ``status``, else :class:`Refused`."""
    if response.status_code == status:
        return response.parsed
    try:
        problem = json.loads(response.content)
        text = f"{problem['title']}: {problem['detail']}"
        if problem.get("errors"):
            text += " " + json.dumps(problem["errors"])
    except (ValueError, KeyError, TypeError):
        text = response.content.decode(errors="replace")[:200]
    if response.status_code == 401 and not os.environ.get("API_KEY"):
        text += " (set API_KEY)"
    raise Refused(f"{int(response.status_code)} {text}")


def emit(raw: bytes) -> None:
    """One answer of the API, as it sent it, on one line."""
    print(json.dumps(json.loads(raw)), flush=True)


def create_note(args) -> None:
    body = sys.stdin.read() if args.body == "-" else args.body
    response = post_notes.sync_detailed(
        client=api_client(), body=NoteCreate(title=args.title, body=body)
    )
    checked(response, 201)
    emit(response.content)


def get_note(args) -> None:
    response = get_notes_item.sync_detailed(client=api_client(), note_id=args.id)
    checked(response)
    emit(response.content)


def list_notes(args) -> None:
    client = api_client()
    cursor = UNSET
    while True:
        response = get_notes.sync_detailed(
            client=client, limit=args.limit, cursor=cursor
        )
        page = checked(response)
        for note in json.loads(response.content)["items"]:
            print(json.dumps(note), flush=True)
        if page.next_ is None:
            return
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(page.next_).query)
        cursor = int(query["cursor"][0])
        if not args.all:
            warn(f"more with --all (next: {page.next_})")
            return


def shorten_url(args) -> None:
    link = LinkIn(
        url=args.url,
        alias=UNSET if args.alias is None else args.alias,
        max_visits=UNSET if args.max_visits is None else args.max_visits,
        expires_at=UNSET if args.expires_at is None else args.expires_at,
    )
    response = post_links.sync_detailed(client=api_client(), body=link)
    print(checked(response, 201).short_url, flush=True)


def follow_stream(args) -> None:
    """Print each event's JSON; after a lost connection, go on from the last id.

    A first connection that fails is an error (a wrong ``STREAM_URL`` or
    key); once the stream has answered, the command reconnects on its own.
    """
    stream = Stream(
        os.environ.get("STREAM_URL", "http://127.0.0.1:8001"),
        os.environ.get("API_KEY", ""),
        args.after,
    )
    printed = 0
    timeout = httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT)
    with httpx.Client(timeout=timeout) as http:
        while True:
            try:
                for data in stream.events(http):
                    print(data, flush=True)
                    printed += 1
                    if printed == args.count:
                        return
                why = "closed by the server"
            except (httpx.TransportError, Lost) as error:
                if not stream.connected:
                    raise
                why = str(error) or type(error).__name__
            warn(f"the stream was lost ({why}); again in {stream.retry:g} s")
            time.sleep(stream.retry)


class Stream:
    """The push worker's ``/events``, resumed from the last event id it sent."""

    def __init__(self, url: str, key: str, after: Optional[int]):
        self.url = url.rstrip("/") + "/events"
        self.headers = {"Accept": "text/event-stream"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.last_id = None if after is None else str(after)
        self.retry = 3.0  # seconds, until the stream says otherwise
        self.connected = False

    def events(self, http: httpx.Client) -> Iterator[str]:
        """The data of each event of one connection, until it ends."""
        if self.last_id is not None:
            self.headers["Last-Event-ID"] = self.last_id
        with http.stream("GET", self.url, headers=self.headers) as response:
            if response.status_code != 200:
                response.read()
                if response.status_code >= 500 and self.connected:
                    raise Lost(f"{response.status_code} {response.reason_phrase}")
                checked(response)
            self.connected = True
            for event_id, event, data, retry in sse_events(response.iter_lines()):
                self.retry = self.retry if retry is None else retry
                self.last_id = self.last_id if event_id is None else event_id
                if event == "reset":
                    warn(f"the stream starts over: {data}")
                elif data is not None:
                    yield data


def warn(message: str) -> None:
    print(f"fpa: {message}", file=sys.stderr, flush=True)


def sse_events(
    lines: Iterable[str],
) -> Iterator[Tuple[Optional[str], str, Optional[str], Optional[float]]]:
    """(id, event, data, retry seconds) of each event in Server-Sent Events lines.

    A ``retry:`` field comes out alone, with no data, when no event follows it.
    """
    event_id = None
    event = "message"
    data = []
    retry = None
    for line in lines:
        if not line:
            if data or retry is not None:
                yield event_id, event, "\n".join(data) if data else None, retry
            event_id, event, data, retry = None, "message", [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            event_id = value
        elif name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "retry" and value.isdigit():
            retry = int(value) / 1000


if __name__ == "__main__":
    sys.exit(main())
