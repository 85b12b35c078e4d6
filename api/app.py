"""The app factory: builds the stores once and hands them to the resources.

``app`` at the bottom is what gunicorn serves (``api.app:app``); building it
opens no connection: engines and clients connect on first use.
"""

import falcon
import falcon.media

from api import __version__
from api import errors
from api.logs import configure_logging
from api.middleware import JSON_MEDIA_TYPES
from api.middleware import BodyLimit
from api.middleware import RequestId
from api.middleware import RequireJSON
from api.openapi import Routes
from api.openapi import add_docs
from api.settings import Settings
from db.sql import Database
from resources.collatz import CollatzChain
from resources.collatz import CollatzLongest
from resources.health import Health
from resources.health import Ready
from workers.collatz_client import CollatzClient

TITLE = "Falcon PyPy API"


def create_app(settings: Settings) -> falcon.App:
    """Build the WSGI app for ``settings``."""
    database = Database(settings.database_url)

    app = falcon.App(
        middleware=[RequestId(), BodyLimit(settings.max_body_bytes), RequireJSON()]
    )
    json_handler = falcon.media.JSONHandler()
    for media_type in JSON_MEDIA_TYPES + (errors.PROBLEM_JSON,):
        app.req_options.media_handlers[media_type] = json_handler
        app.resp_options.media_handlers[media_type] = json_handler
    errors.install(app)

    routes = Routes(app)
    routes.add("/health", Health())
    routes.add("/ready", Ready({"sql": database.ping}))

    # Collatz: the longest chain comes from the ZeroMQ workers through the
    # broker; one start's chain is computed here. The client connects lazily,
    # in the gunicorn worker that uses it.
    collatz = CollatzClient(settings.collatz_frontend, settings.collatz_timeout)
    routes.add("/collatz", CollatzLongest(collatz, settings.collatz_max_n))
    routes.add("/collatz/{k:int}", CollatzChain(settings.collatz_max_n))

    add_docs(routes, TITLE, __version__)
    return app


def get_app() -> falcon.App:
    """The app for the settings in the environment (gunicorn: ``api.app:get_app()``)."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings)


app = get_app()
