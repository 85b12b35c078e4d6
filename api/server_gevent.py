"""The gevent worker of :mod:`api.server` (imported only when it is used).

One greenlet per connection: a client that sends slowly, or stalls, holds a
greenlet (a few kilobytes) instead of a worker, so the other requests of the
worker go on. Each read from a client waits at most gunicorn's ``timeout``.
"""

from gunicorn.workers.ggevent import GeventWorker as _GeventWorker

from api.server import ProblemErrors


class GeventWorker(ProblemErrors, _GeventWorker):
    """Gunicorn's gevent worker, problem+json errors, bounded client reads."""

    def handle_request(self, listener_name, req, sock, addr):
        """Serve one request whose headers are read; its body reads are bounded.

        Headers: gunicorn gives up on a client silent for ``keepalive``
        seconds. Here, once they are in, a read of the body that waits longer
        than ``timeout`` seconds raises socket.timeout, which the app answers
        as a 400 (web.middleware); gunicorn's own handle() had just made the
        socket blocking without a limit.
        """
        sock.settimeout(self.cfg.timeout)
        return super().handle_request(listener_name, req, sock, addr)
