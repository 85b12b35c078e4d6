"""What inbound webhook events do: event name -> handler, through a decorator::

    @on("push")
    def push(delivery, context):
        return {"commits": len(delivery.payload.get("commits", []))}

What a handler returns is the delivery's outcome; :class:`PermanentError` fails
it at once, any other exception is retried. Handling is at least once.
"""

import dataclasses
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional
from typing import Protocol

from core.notes import BODY_MAX
from core.notes import TITLE_MAX
from core.text import clean_text

Handler = Callable[[Any, "HandlerContext"], Any]


class NotesCreator(Protocol):
    """The part of the notes store the handlers use."""

    def create(self, title: str, body: str) -> Any:
        """Store a new note and return it (with its ``id``), as a notes store does."""


@dataclasses.dataclass
class HandlerContext:
    """The stores handlers may use (None: not available in this process)."""

    notes: Optional[NotesCreator] = None


class PermanentError(Exception):
    """The delivery cannot succeed however often it is tried (safe to record)."""


class Registry:
    """Event name -> handler; one handler per event."""

    def __init__(self):
        self._handlers: Dict[str, Handler] = {}

    def on(self, *events: str) -> Callable[[Handler], Handler]:
        """Decorator: register the function as the handler of ``events``."""
        if not events:
            raise ValueError("name at least one event")

        def register(handler: Handler) -> Handler:
            for event in events:
                if event in self._handlers:
                    raise ValueError(
                        f"event {event!r} already has a handler: "
                        f"{self._handlers[event].__name__}"
                    )
                self._handlers[event] = handler
            return handler

        return register

    def __contains__(self, event: str) -> bool:
        return event in self._handlers

    def events(self) -> List[str]:
        """The events that have a handler, sorted."""
        return sorted(self._handlers)

    def handle(self, delivery, context: HandlerContext) -> Any:
        """Run the handler of ``delivery.event``; returns its outcome.

        Raises:
            LookupError: no handler for the event.
        """
        try:
            handler = self._handlers[delivery.event]
        except KeyError:
            raise LookupError(f"no handler for {delivery.event!r}") from None
        return handler(delivery, context)


#: The handlers of this service; the receiver and the runner use it.
registry = Registry()
on = registry.on


@on("ping")
def ping(delivery, context: HandlerContext) -> dict:
    """A sender checking the hook works (GitHub sends one when a hook is created)."""
    payload = delivery.payload if isinstance(delivery.payload, dict) else {}
    return {"pong": True, "hook_id": payload.get("hook_id")}


@on("issues")
def issue_to_note(delivery, context: HandlerContext) -> dict:
    """GitHub ``issues`` ``opened``: a note with the GitHub issue's title and body."""
    payload = delivery.payload if isinstance(delivery.payload, dict) else {}
    action = payload.get("action")
    if action != "opened":
        return {"skipped": f"action {action!r} is not handled"}
    issue = payload.get("issue")
    if not isinstance(issue, dict) or not isinstance(issue.get("title"), str):
        raise PermanentError("the payload has no issue with a title")
    if context.notes is None:
        raise PermanentError("no notes store is available to the handlers")
    body = issue.get("body")
    # GitHub allows longer titles and bodies than notes do: keep what fits,
    # as text every store holds (core.text: no NUL).
    note = context.notes.create(
        clean_text(issue["title"][:TITLE_MAX]),
        clean_text(body[:BODY_MAX]) if isinstance(body, str) else "",
    )
    return {"note_id": note.id, "issue": issue.get("html_url")}
