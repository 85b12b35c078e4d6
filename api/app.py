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
from db import notes as notes_db
from db.links import LinkStore
from db.primes import PrimeStore
from db.salary_store import SalaryStore
from db.sql import Database
from db.subscriptions import SubscriptionStore
from db.webhooks import WebhookStore
from resources import salaries
from resources.collatz import CollatzChain
from resources.collatz import CollatzLongest
from resources.health import Health
from resources.health import Ready
from resources.notes import Notes
from resources.primes import Primes
from resources.shortener import Links
from resources.shortener import Redirect
from resources.subscriptions import Subscriptions
from resources.webhooks import WebhookDeliveries
from resources.webhooks import WebhookReceiver
from workers.collatz_client import CollatzClient
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
    ready_checks = {"sql": database.ping}

    # Notes: RethinkDB when RETHINKDB_URL is set, else the SQL store.
    notes_store = notes_db.open_store(settings, database)
    notes = Notes(notes_store)
    routes.add("/notes", notes)
    routes.add("/notes/{note_id}", notes, suffix="item")
    ready_checks["notes"] = notes_store.ping

    # Primes (SQL): all-or-nothing batches; /supply_primes is the seed's path.
    primes = Primes(PrimeStore(database))
    routes.add("/primes", primes)
    routes.add("/primes/{n:int}", primes, suffix="item")
    routes.add("/supply_primes", primes, suffix="seed")

    # Shortener. "/{code}" catches every other one-segment path: Falcon
    # prefers literal segments, and aliases may not take a route's name.
    link_store = LinkStore(database, settings.visit_salt)
    links = Links(link_store, settings.public_base_url)
    routes.add("/links", links)
    routes.add("/links/{code}", links, suffix="item")
    routes.add("/links/{code}/visits", links, suffix="visits")
    routes.add("/{code}", Redirect(link_store, settings.redirect_status))

    # Salaries: the City of Chicago salary file, loaded by
    # `python -m api import-salaries`.
    salary_store = SalaryStore(database)
    department_employees = salaries.DepartmentEmployees(salary_store)
    routes.add("/departments", salaries.Departments(salary_store))
    routes.add("/departments/{name}", salaries.DepartmentStats(salary_store))
    routes.add("/departments/{name}/employees", department_employees)
    routes.add("/dept/{name}", department_employees)  # the seed's path
    routes.add("/employees", salaries.Employees(salary_store))

    # Collatz: the longest chain comes from the ZeroMQ workers through the
    # broker; one start's chain is computed here. The client connects lazily,
    # in the gunicorn worker that uses it.
    collatz = CollatzClient(settings.collatz_frontend, settings.collatz_timeout)
    routes.add("/collatz", CollatzLongest(collatz, settings.collatz_max_n))
    routes.add("/collatz/{k:int}", CollatzChain(settings.collatz_max_n))
    ready_checks["collatz"] = collatz.ping

    # Webhooks: inbound deliveries, handled by workers.webhook_runner;
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

    routes.add("/ready", Ready(ready_checks))
    add_docs(routes, TITLE, __version__)
    return app


def get_app() -> falcon.App:
    """The app for the settings in the environment (gunicorn: ``api.app:get_app()``)."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings)


app = get_app()
