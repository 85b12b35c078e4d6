"""The gevent worker of :mod:`api.server` (imported only when it is used).

A greenlet per connection, each read bounded by gunicorn's ``timeout``; a
shorter request path (:meth:`GeventWorker.handle_request`,
:class:`OneSendResponse`); and a microsecond's turn after each request, so a
busy keep-alive connection lets the others be polled.

Design: docs/design/serving.md#the-gevent-worker
"""

import datetime
import email.utils
import time

import gevent
from gunicorn.http import wsgi
from gunicorn.workers.ggevent import GeventWorker as _GeventWorker

from api.server import ProblemErrors
from api.server import Settled
from api.server import closes_connection

#: Seconds a greenlet sleeps after each request, to let the others take a
#: turn (see the module's docstring).
TURN = 0.000001


class _Date:
    """The ``Date`` header's value, formatted once a second rather than per answer."""

    second = -1
    value = ""

    @classmethod
    def now(cls) -> str:
        second = int(time.time())
        if second != cls.second:
            cls.value = email.utils.formatdate(second, usegmt=True)
            cls.second = second
        return cls.value


class OneSendResponse(wsgi.Response):
    """Gunicorn's response, whose head leaves with the first bytes of the body.

    A head and a body sent apart cost two ``send`` calls per answer, where
    one does. The head waits in ``head`` until the first :meth:`write` (or
    :meth:`close`, for an answer without a body); a chunked body (a stream)
    and a file sent with ``sendfile`` get the head on its own first.
    """

    head = b""

    def default_headers(self):
        if self.upgrade:
            connection = "upgrade"
        elif self.should_close():
            connection = "close"
        else:
            connection = "keep-alive"
        version = self.req.version
        headers = [
            f"HTTP/{version[0]}.{version[1]} {self.status}\r\n",
            f"Server: {self.version}\r\n",
            f"Date: {_Date.now()}\r\n",
            f"Connection: {connection}\r\n",
        ]
        if self.chunked:
            headers.append("Transfer-Encoding: chunked\r\n")
        return headers

    def send_headers(self):
        if self.headers_sent:
            return
        lines = self.default_headers()
        lines.extend(f"{name}: {value}\r\n" for name, value in self.headers)
        lines.append("\r\n")
        self.head = "".join(lines).encode("latin-1")
        self.headers_sent = True
        if self.chunked:
            self._send_head()

    def _send_head(self) -> None:
        head, self.head = self.head, b""
        if head:
            self.sock.sendall(head)

    def write(self, arg):
        self.send_headers()
        if self.chunked or not self.head:
            return super().write(arg)
        if not isinstance(arg, bytes):
            raise TypeError(f"{arg!r} is not bytes")
        if self.response_length is not None:
            arg = arg[: max(self.response_length - self.sent, 0)]
        self.sent += len(arg)
        data, self.head = self.head + arg, b""
        # send first: gevent's sendall asks the socket's buffer size of the
        # kernel each time, a system call more per answer, which nearly
        # always leaves whole with one send.
        sent = self.sock.send(data)
        if sent < len(data):
            self.sock.sendall(memoryview(data)[sent:])

    def sendfile(self, respiter):
        self.send_headers()
        self._send_head()
        return super().sendfile(respiter)

    def close(self):
        self.send_headers()
        self._send_head()
        super().close()


class GeventWorker(ProblemErrors, Settled, _GeventWorker):
    """Gunicorn's gevent worker, problem+json errors, bounded client reads, turns."""

    def patch(self):
        """Monkey-patch, then let notes created together commit together.

        The first write of a group sleeps one turn, so the requests ready at
        the same moment reach their writes and share its transaction
        (group commit: :mod:`db.notes.groups`).
        """
        super().patch()
        # Imported here, once patched: SQLAlchemy's locks must be gevent's.
        from db.notes.groups import set_group_pause

        set_group_pause(_take_turn)

    def handle_request(self, listener_name, req, sock, addr):
        """Serve one request whose headers are read; its body reads are bounded.

        Headers: gunicorn gives up on a client silent for ``keepalive``
        seconds. Here, once they are in, a read of the body that waits longer
        than ``timeout`` seconds raises socket.timeout, which the app answers
        as a 400 (web.middleware). Returns False when the app took the socket
        over (an upgrade); raises StopIteration when the connection must
        close. Then the greenlet lets the others take a turn.
        """
        sock.settimeout(self.cfg.timeout)
        try:
            return self._serve(listener_name, req, sock, addr)
        finally:
            _take_turn()

    def _serve(self, listener_name, req, sock, addr) -> bool:
        started = time.monotonic() if self.log.access_log else None
        environ, resp = {}, None
        try:
            self.cfg.pre_request(self, req)
            resp, environ = wsgi.create(req, sock, addr, listener_name, self.cfg)
            resp.__class__ = OneSendResponse
            environ["wsgi.multithread"] = True
            self.nr += 1
            if self.nr >= self.max_requests and self.alive:
                self.log.info("Autorestarting worker after current request.")
                self.alive = False
            if not self.alive:
                resp.force_close()

            def start_response(status, headers, exc_info=None):
                if closes_connection(headers):
                    resp.force_close()
                return resp.start_response(status, headers, exc_info)

            body = self.wsgi(environ, start_response)
            if self.is_already_handled(body):
                return False
            try:
                if isinstance(body, environ["wsgi.file_wrapper"]):
                    resp.write_file(body)
                else:
                    for chunk in body:
                        resp.write(chunk)
                resp.close()
            finally:
                if started is not None:
                    took = datetime.timedelta(seconds=time.monotonic() - started)
                    self.log.access(resp, req, environ, took)
                if hasattr(body, "close"):
                    body.close()
            if resp.should_close():
                raise StopIteration()
            return True
        except (StopIteration, OSError):  # the caller closes the connection
            raise
        except Exception:
            if resp is not None and resp.headers_sent and not resp.head:
                # Part of the answer is out: only closing tells the client.
                self.log.exception("Error handling request")
                raise StopIteration() from None
            raise
        finally:
            try:
                self.cfg.post_request(self, req, environ, resp)
            except Exception:
                self.log.exception("Exception in post_request hook")


def _take_turn() -> None:
    gevent.sleep(TURN)
