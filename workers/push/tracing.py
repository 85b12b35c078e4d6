"""The push worker's spans: one per change it reads, in the trace of the write.

With TRACING on, every change becomes a :class:`TracedEvent`: the event
(the same JSON on every channel) with the ``traceparent`` of a span started
under the one the API wrote with the change, so a webhook delivery of the
event (:mod:`workers.webhooks.sender`) continues the request's trace. Off,
events are plain :func:`core.notes.event_json`, with no span and no copy.
"""

from typing import TYPE_CHECKING
from typing import Callable
from typing import Optional

from core import tracing
from core.notes import Change
from core.notes import event_json
from workers.push.events import Event

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer


class TracedEvent(dict):
    """An event, and the trace context it was read in (an attribute: never sent)."""

    __slots__ = ("traceparent",)

    def __init__(self, fields: Event, traceparent: Optional[str]):
        super().__init__(fields)
        self.traceparent = traceparent


def event_maker(tracer: Optional["Tracer"]) -> Callable[[Change], Event]:
    """Turns a change into its event: traced with ``tracer``, plain without one."""
    if tracer is None:
        return event_json
    from opentelemetry.trace import SpanKind

    def make(change: Change) -> Event:
        with tracer.start_as_current_span(
            f"receive note.{change.type}",
            context=tracing.parent(change.traceparent),
            kind=SpanKind.CONSUMER,
            attributes={"note.change.seq": change.seq, "note.id": change.note_id},
        ):
            return TracedEvent(event_json(change), tracing.traceparent())

    return make
