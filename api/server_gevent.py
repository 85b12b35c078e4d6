"""The gevent worker of :mod:`api.server` (imported only when it is used).

One greenlet per connection: a client that sends slowly, or stalls, holds a
greenlet (a few kilobytes) instead of a worker, so the other requests of the
worker go on. Each read from a client waits at most gunicorn's ``timeout``.

Turns. A greenlet runs until it waits, and a keep-alive connection whose
next request is already there never waits: gunicorn's greenlet served it
request after request while the worker's other connections, ready too,
waited for the loop to poll (wrk -c16 on one worker: p99 201 ms on the
bare app under CPython, the mean 2 ms). So after each request the greenlet
sleeps a microsecond: a timer, which runs it again only after the loop has
polled every socket (``sleep(0)`` may run it again first). Measured the
same way: p99 3.5 ms, requests/s -3%; under PyPy, two workers, the bare
app's requests/s went up (20,150 -> 24,576).
"""

import gevent
from gunicorn.workers.ggevent import GeventWorker as _GeventWorker

from api.server import ProblemErrors

#: Seconds a greenlet sleeps after each request, to let the others take a
#: turn (see the module's docstring).
TURN = 0.000001


class GeventWorker(ProblemErrors, _GeventWorker):
    """Gunicorn's gevent worker, problem+json errors, bounded client reads, turns."""

    def patch(self):
        """Monkey-patch, then let notes created together commit together.

        The first write of a group sleeps one turn, so the requests ready at
        the same moment reach their writes and share its transaction
        (group commit: :meth:`db.notes.sql.SqlNotesStore.create`).
        """
        super().patch()
        # Imported here, once patched: SQLAlchemy's locks must be gevent's.
        from db.notes.sql import set_group_pause

        set_group_pause(_take_turn)

    def handle_request(self, listener_name, req, sock, addr):
        """Serve one request whose headers are read; its body reads are bounded.

        Headers: gunicorn gives up on a client silent for ``keepalive``
        seconds. Here, once they are in, a read of the body that waits longer
        than ``timeout`` seconds raises socket.timeout, which the app answers
        as a 400 (web.middleware); gunicorn's own handle() had just made the
        socket blocking without a limit. Then the greenlet lets the others
        take a turn.
        """
        sock.settimeout(self.cfg.timeout)
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            _take_turn()


def _take_turn() -> None:
    gevent.sleep(TURN)
