"""A real local HTTP endpoint for webhook tests: http.server in a thread, free port.

On 127.0.0.1, or on ``host`` (an address of this machine).

``Receiver(script)`` answers each POST with the next entry of ``script`` (the
last one repeats): a status code, ``(status, headers)``, or ``"hang"`` to
hold the request until the receiver is stopped (for timeouts). Every request
is recorded (headers and body) in ``requests``.
"""

import http.server
import threading
from typing import List
from typing import NamedTuple


class Received(NamedTuple):
    path: str
    headers: dict
    body: bytes


class Receiver:
    """An HTTP server on 127.0.0.1:<free port> that plays a script of answers."""

    def __init__(self, script, host: str = "127.0.0.1"):
        self.script = list(script)
        self.requests: List[Received] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                        )
                    )
                    index = min(len(receiver.requests), len(receiver.script)) - 1
                    answer = receiver.script[index]
                if answer == "hang":
                    receiver.release.wait(30)
                    answer = 200
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass  # keep test output clean

        # Port 0: the OS picks a free port, no race with other test runs.
        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}/hook"
        # A short poll interval: shutdown() waits for the loop to notice.
        self._thread = threading.Thread(
            target=self.server.serve_forever, args=(0.02,), daemon=True
        )

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
