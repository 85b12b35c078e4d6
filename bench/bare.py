"""The ceiling: a bare Falcon app that returns a constant JSON document."""

import falcon

DOCUMENT = {"status": "ok"}


class Constant:
    """``GET /``: the same small document /health returns, without middleware."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Constant JSON document."""
        resp.media = DOCUMENT


app = falcon.App()
app.add_route("/", Constant())
