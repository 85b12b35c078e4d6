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
from api.webhook_sources import parse_sources
from db.sql import Database
from db.subscriptions import SubscriptionStore
from db.webhooks import WebhookStore
from resources.health import Health
from resources.health import Ready
from resources.subscriptions import Subscriptions
from resources.webhooks import WebhookDeliveries
from resources.webhooks import WebhookReceiver
from workers.webhook_handlers import registry as webhook_handlers

TITLE = "Falcon PyPy API"


def create_app(settings: Settings) -> falcon.App:
    """Build the WSGI app for ``settings``."""
    # Parsed first: a bad WEBHOOK_SOURCES stops the app before anything starts.
    webhook_sources = parse_sources(settings.webhook_sources)
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

    # Webhooks (issue 8): inbound deliveries, handled by workers.webhook_runner;
    # outbound subscriptions, delivered by the push worker. The literal
    # /webhooks/deliveries wins over /webhooks/{source} in Falcon's router, so
    # parse_sources refuses a source named "deliveries".
    webhook_store = WebhookStore(database)
    routes.add("/webhooks/deliveries", WebhookDeliveries(webhook_store))
    routes.add("/webhooks/{source}",
               WebhookReceiver(webhook_sources, webhook_store, webhook_handlers))
    subscriptions = Subscriptions(SubscriptionStore(database))
    routes.add("/subscriptions", subscriptions)
    routes.add("/subscriptions/{subscription_id:int}", subscriptions, suffix="item")
    routes.add("/subscriptions/{subscription_id:int}/deliveries", subscriptions,
               suffix="deliveries")
    add_docs(routes, TITLE, __version__)
    return app


def get_app() -> falcon.App:
    """The app for the settings in the environment (gunicorn: ``api.app:get_app()``)."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings)


app = get_app()
