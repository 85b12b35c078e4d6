"""A mixed workload for Locust: notes, short links, salaries, the change stream.

    export API_KEY=$(cat var/api-key)
    locust -f loadtest/locustfile.py --host http://127.0.0.1:8000

Every answer is checked against the status the API documents for the call.
Users and options: docs/user/load-testing.md
"""

import collections
import datetime
import json
import os
import random
import time
import urllib.parse
import uuid

import requests
import urllib3
from locust import User
from locust import between
from locust import constant
from locust import events
from locust import task
from locust.contrib.fasthttp import FastHttpUser

#: The push worker's port, when ``--push-url`` names none (``make serve``'s).
PUSH_PORT = 8001
#: Seconds a change stream may stay silent (the worker sends a keep-alive
#: every 15 s) before it counts as dead.
STREAM_READ_TIMEOUT = 60.0
#: Notes whose creation the subscribers time: the newest this many.
PENDING_LIMIT = 10_000


@events.init_command_line_parser.add_listener
def _arguments(parser):
    parser.add_argument(
        "--api-key",
        env_var="API_KEY",
        default="",
        is_secret=True,
        help="API key sent as 'Authorization: Bearer KEY' (write scope: notes "
        "and links; read: the change stream); empty: none (AUTH=off)",
    )
    parser.add_argument(
        "--push-url",
        env_var="PUSH_URL",
        default="",
        help="base URL of the push worker (GET /events); "
        f"default: the host of --host on port {PUSH_PORT}",
    )
    parser.add_argument(
        "--subscribers",
        type=int,
        env_var="SUBSCRIBERS",
        default=1,
        help="change-stream subscribers, on top of the weighted users",
    )


@events.init.add_listener
def _configure(environment, **_kwargs):
    options = environment.parsed_options
    if options is None:
        return
    ChangeStreamSubscriber.fixed_count = options.subscribers
    if options.subscribers < 1:  # a fixed count of 0 would mean "by weight"
        environment.user_classes[:] = [
            user
            for user in environment.user_classes
            if user is not ChangeStreamSubscriber
        ]


def _option(environment, name: str, variable: str) -> str:
    """A custom argument, or its variable when Locust runs as a library."""
    options = environment.parsed_options
    if options is not None:
        return getattr(options, name)
    return os.environ.get(variable, "")


def _auth(environment) -> dict:
    key = _option(environment, "api_key", "API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def default_push_url(host: str) -> str:
    """``host``'s scheme and name on the push worker's port."""
    parts = urllib.parse.urlsplit(host)
    name = parts.hostname or "127.0.0.1"
    if ":" in name:  # an IPv6 address
        name = f"[{name}]"
    return f"{parts.scheme or 'http'}://{name}:{PUSH_PORT}"


class _Pending:
    """When each recent note of this process was sent, by its unique title.

    By title, since the event may arrive before the answer that names the
    id. Writers and subscribers are greenlets of one process: a plain
    ordered dict is enough, bounded so notes never announced do not pile up.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.sent = collections.OrderedDict()

    def add(self, title: str, sent: float) -> None:
        self.sent[title] = sent
        while len(self.sent) > self.limit:
            self.sent.popitem(last=False)

    def get(self, title: str):
        return self.sent.get(title)


PENDING = _Pending(PENDING_LIMIT)


def expect(response, status: int, *fields: str):
    """The JSON body of ``response`` if it has ``status`` and ``fields``, else None.

    Marks the response (opened with ``catch_response=True``) a success or a
    failure that names what was wrong.
    """
    if response.status_code != status:
        # No status: the request failed (refused, reset, timed out).
        detail = response.text if response.status_code else response.error
        response.failure(
            f"{status} expected, got {response.status_code}: {str(detail)[:200]}"
        )
        return None
    if status in (204, 302, 304):
        response.success()
        return {}
    try:
        document = response.json()
    except ValueError:
        response.failure(f"not JSON: {(response.text or '')[:200]}")
        return None
    missing = [field for field in fields if field not in document]
    if missing:
        response.failure(f"no {', '.join(missing)} in {json.dumps(document)[:200]}")
        return None
    response.success()
    return document


class NoteWriter(FastHttpUser):
    """Creates a note and reads it back; patches, deletes and lists now and then.

    Every third note is patched with ``If-Match``, every fourth deleted and
    every fifth followed by a list of the newest, counting from the first,
    so even a short run makes each call.
    """

    weight = 4
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.auth = _auth(self.environment)
        self.count = 0

    @task
    def write_and_read(self):
        self.count += 1
        body = {"title": f"load {uuid.uuid4().hex}", "body": "x" * 200}
        PENDING.add(body["title"], time.time())
        with self.client.post(
            "/notes", json=body, headers=self.auth, name="/notes", catch_response=True
        ) as response:
            note = expect(response, 201, "id")
            etag = response.headers.get("ETag") if response.headers else None
            if note is not None and not etag:
                response.failure("no ETag")
                note = None
        if note is None:
            return
        path = f"/notes/{note['id']}"
        with self.client.get(
            path, headers=self.auth, name="/notes/[id]", catch_response=True
        ) as response:
            if expect(response, 200, "id", "title") is None:
                return
        if self.count % 3 == 1:
            with self.client.patch(
                path,
                json={"body": "changed"},
                headers={**self.auth, "If-Match": etag},
                name="/notes/[id]",
                catch_response=True,
            ) as response:
                expect(response, 200, "id")
        if self.count % 4 == 1:
            with self.client.delete(
                path, headers=self.auth, name="/notes/[id]", catch_response=True
            ) as response:
                expect(response, 204)
        if self.count % 5 == 1:
            with self.client.get(
                "/notes?limit=20",
                headers=self.auth,
                name="/notes?limit=[n]",
                catch_response=True,
            ) as response:
                expect(response, 200, "items", "next")


class LinkUser(FastHttpUser):
    """Shortens a URL, then follows the short link as a visitor would (no key).

    Every fourth link, from the first, is read back with its visit count.
    """

    weight = 3
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.auth = _auth(self.environment)
        self.count = 0

    @task
    def shorten_and_follow(self):
        self.count += 1
        target = f"https://example.com/load/{uuid.uuid4().hex}"
        with self.client.post(
            "/links",
            json={"url": target},
            headers=self.auth,
            name="/links",
            catch_response=True,
        ) as response:
            link = expect(response, 201, "code", "url")
        if link is None:
            return
        with self.client.get(
            f"/{link['code']}",
            allow_redirects=False,
            name="/[code]",
            catch_response=True,
        ) as response:
            location = response.headers.get("Location") if response.headers else None
            if expect(response, 302) is not None and location != link["url"]:
                response.failure(f"redirect to {location!r}, not {link['url']!r}")
        if self.count % 4 == 1:
            with self.client.get(
                f"/links/{link['code']}",
                headers=self.auth,
                name="/links/[code]",
                catch_response=True,
            ) as response:
                expect(response, 200, "code", "visits")


class SalaryReader(FastHttpUser):
    """The public salary reads: a department's statistics and its employees.

    The list of departments is read first and again every tenth time.
    """

    weight = 3
    wait_time = between(0.5, 1.5)
    #: Pages of a department's employees a reader follows through ``next``.
    pages = 2

    def on_start(self):
        self.departments = []
        self.count = 0

    @task
    def read_department(self):
        if self.count % 10 == 0 or not self.departments:
            self.list_departments()
            if not self.departments:
                return
        self.count += 1
        name = urllib.parse.quote(random.choice(self.departments), safe="")
        with self.client.get(
            f"/departments/{name}", name="/departments/[name]", catch_response=True
        ) as response:
            expect(response, 200, "employees", "salary")
        url = f"/departments/{name}/employees?limit=50&order=-salary"
        for _ in range(self.pages):
            with self.client.get(
                url, name="/departments/[name]/employees", catch_response=True
            ) as response:
                page = expect(response, 200, "items", "next")
            if page is None or not page["next"]:
                return
            url = page["next"]

    def list_departments(self):
        with self.client.get(
            "/departments", name="/departments", catch_response=True
        ) as response:
            document = expect(response, 200, "departments")
            if document is None:
                return
            self.departments = document["departments"]
            if not self.departments:
                response.failure("no departments: run python -m api import-salaries")


class StreamError(Exception):
    """What went wrong on a change stream, as Locust's failure."""


class ChangeStreamSubscriber(User):
    """Follows ``GET /events`` on the push worker and times what arrives.

    Reports, besides the connection (``GET /events``, time to the headers):

    - ``SSE events received``: one entry per change, its time the lag from
      the change's commit (the event's ``ts``) to its arrival, by the two
      machines' clocks;
    - ``SSE note created, POST to event``: from a ``NoteWriter`` of this
      process sending ``POST /notes`` to the ``note.created`` event arriving.

    A stream the server ends or that stays silent past the keep-alives is a
    failure; the subscriber then resumes with ``Last-Event-ID``.
    """

    fixed_count = 1
    wait_time = constant(1)

    def on_start(self):
        base = _option(self.environment, "push_url", "PUSH_URL")
        self.push_url = (base or default_push_url(self.host or "")).rstrip("/")
        self.session = requests.Session()
        self.session.headers.update(_auth(self.environment))
        self.last_event_id = None

    def on_stop(self):
        self.session.close()

    def _report(self, type_, name, milliseconds, length=0, exception=None):
        self.environment.events.request.fire(
            request_type=type_,
            name=name,
            response_time=milliseconds,
            response_length=length,
            exception=exception,
            context={},
        )

    @task
    def follow(self):
        headers = {"Accept": "text/event-stream"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        started = time.perf_counter()
        try:
            response = self.session.get(
                self.push_url + "/events",
                headers=headers,
                stream=True,
                timeout=(5, STREAM_READ_TIMEOUT),
            )
        except requests.RequestException as ex:
            self._report("GET", "/events", _since(started), exception=ex)
            return
        with response:
            if response.status_code != 200:
                error = StreamError(
                    f"200 expected, got {response.status_code}: {response.text[:200]}"
                )
                self._report("GET", "/events", _since(started), exception=error)
                return
            self._report("GET", "/events", _since(started))
            try:
                for data in sse_data(response.raw):
                    self._received(data)
                error = StreamError("the server ended the stream")
            except (OSError, urllib3.exceptions.HTTPError) as ex:  # a timeout, a reset
                error = StreamError(ex)
        self._report("SSE", "events stream", _since(started), exception=error)

    def _received(self, data: bytes) -> None:
        arrived = time.time()
        event = json.loads(data)
        if not str(event.get("type", "")).startswith("note."):
            return  # a reset: the changes it announces follow as events
        self.last_event_id = event["id"]
        # Clamped at 0: ``ts`` has whole milliseconds.
        lag = max(0.0, arrived - parse_time(event["ts"]))
        self._report("SSE", "events received", lag * 1000, len(data))
        if event["type"] == "note.created":
            sent = PENDING.get(event["new_val"]["title"])
            if sent is not None:
                self._report(
                    "SSE", "note created, POST to event", (arrived - sent) * 1000
                )


def _since(started: float) -> float:
    """Milliseconds since ``started`` (``time.perf_counter()``)."""
    return (time.perf_counter() - started) * 1000


def parse_time(text: str) -> float:
    """Seconds since the epoch of an API time (``2025-01-31T12:00:00.123Z``)."""
    moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def sse_data(raw):
    """The ``data`` of each event of a Server-Sent Events body, as it arrives.

    ``raw`` is urllib3's response: ``read1`` returns what the socket has
    rather than waiting for a full buffer, so no event waits for the next.
    """
    pending = b""
    data = []
    while True:
        chunk = raw.read1(65536)
        if not chunk:
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            line = line.rstrip(b"\r")
            if not line:
                if data:
                    yield b"\n".join(data)
                    data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
