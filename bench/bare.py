"""The ceiling: a bare Falcon app that returns a constant JSON document.

Served by the same gunicorn settings as the API (``bench.bare:app``), it shows
what this server, interpreter and framework cost before any of the project's
own code runs; each path's req/s is reported as a share of it.
"""

import falcon

DOCUMENT = {"status": "ok"}


class Constant:
    """``GET /``: the same small document /health returns, without middleware."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Constant JSON document."""
        resp.media = DOCUMENT


app = falcon.App()
app.add_route("/", Constant())
