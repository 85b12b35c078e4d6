"""The app factory: builds the stores once and hands them to the resources.

Importing it builds nothing: gunicorn serves ``api.wsgi:app``, which calls
:func:`get_app`; building the app opens no connection either (engines and
clients connect on first use).
"""

from typing import Optional

import falcon
import falcon.media

from core import tracing
from core import wire
from core.hosts import AllowedHosts as HostRule
from core.logs import configure_logging
from core.proxies import TrustedProxies
from core.ratelimit import parse_rate
from core.settings import Settings
from core.targets import Targets
from core.version import __version__
from core.webhook_sources import parse_sources
from db.keys import KeyCache
from db.stores import Stores
from db.stores import open_stores
from gateways.collatz import CollatzClient
from resources import salaries
from resources.collatz import CollatzChain
from resources.collatz import CollatzLongest
from resources.health import Health
from resources.health import Ready
from resources.links import Links
from resources.links import Redirect
from resources.metrics import Backends
from resources.metrics import Metrics
from resources.notes import Notes
from resources.primes import Primes
from resources.subscriptions import Subscriptions
from resources.tickets import StreamTickets
from resources.webhooks import WebhookDeliveries
from resources.webhooks import WebhookReceiver
from web import errors
from web.auth import Auth
from web.fields import ID_CONVERTER
from web.metrics import Metrics as MetricsMiddleware
from web.middleware import JSON_MEDIA_TYPES
from web.middleware import AllowedHosts
from web.middleware import BodyLimit
from web.middleware import ClientAddress
from web.middleware import RequestId
from web.middleware import RequireJSON
from web.openapi import Routes
from web.openapi import add_docs
from web.ratelimit import SCOPES
from web.ratelimit import WRITE_METHODS
from web.ratelimit import RateLimit
from web.tracing import instrument as instrument_falcon
from workers.webhooks.handlers import registry as webhook_handlers

TITLE = "Falcon PyPy API"


def create_app(settings: Settings, stores: Optional[Stores] = None) -> falcon.App:
    """Build the WSGI app for ``settings``; ``stores`` defaults to theirs."""
    # Parsed first: a bad WEBHOOK_SOURCES stops the app before anything starts.
    webhook_sources = parse_sources(settings.webhook_sources)
    # Where links and webhook subscriptions may point (docs/design/security.md).
    targets = Targets(settings.allowed_private_targets)
    # Whose X-Forwarded-For names the client (docs/operations/security.md).
    trusted_proxies = TrustedProxies(settings.trusted_proxies)
    if settings.auth not in ("on", "off"):
        raise ValueError(f"AUTH must be on or off, got {settings.auth!r}")
    stores = stores or open_stores(settings)
    # What each operation needs: filled in by routes.add, read by Auth.
    scopes = {}
    # RATE_LIMIT and COLLATZ_RATE_LIMIT: per-client token buckets in the SQL
    # database, so every gunicorn worker counts against the same ones.
    limiters = []
    links = Links(stores.links, settings.public_base_url, targets)
    collatz = CollatzClient.from_settings(settings)
    collatz_longest = CollatzLongest(collatz, settings.collatz_max_n)
    rate = parse_rate(settings.rate_limit)
    if rate is not None:
        limiters.append(
            RateLimit(
                stores.rate_limits,
                rate,
                settings.rate_limit_scope,
                _rate_limited(settings.rate_limit_scope, links),
            )
        )
    collatz_rate = parse_rate(settings.collatz_rate_limit)
    if collatz_rate is not None:
        limiters.append(
            RateLimit(
                stores.rate_limits,
                collatz_rate,
                "collatz",
                lambda method, resource: resource is collatz_longest,
            )
        )

    # Metrics first (after the client's address): it sees every request, and
    # the final status of each.
    # The key is checked before the rate limits, which count per key.
    hosts = HostRule(settings.allowed_hosts, [settings.public_base_url])
    middleware = [
        MetricsMiddleware(),
        RequestId(),
        AllowedHosts(hosts),
        BodyLimit(settings.max_body_bytes),
    ]
    if trusted_proxies:
        # First: everything after it sees the client, not the proxy.
        middleware.insert(0, ClientAddress(trusted_proxies))
    if settings.auth == "on":
        middleware.append(Auth(KeyCache(stores.keys), scopes))
    # TRACING: a span per request (the instrumentation replaces falcon.App,
    # so it goes first) and one per notes store call; off, nothing is added.
    tracer = tracing.tracer(__name__)
    if tracer is not None:
        instrument_falcon(tracing.provider())
    app = falcon.App(middleware=middleware + limiters + [RequireJSON()])
    json_handler = falcon.media.JSONHandler(dumps=wire.dumps, loads=wire.loads)
    for media_type in JSON_MEDIA_TYPES + (errors.PROBLEM_JSON,):
        app.req_options.media_handlers[media_type] = json_handler
        app.resp_options.media_handlers[media_type] = json_handler
    errors.install(app)

    routes = Routes(
        app,
        rate_limited=lambda method, resource: any(
            limiter.applies(method, resource) for limiter in limiters
        ),
        scopes=scopes,
        auth=settings.auth == "on",
    )
    routes.add("/health", Health())
    ready_checks = {"sql": stores.database.ping, "notes": stores.notes.ping}

    # Notes: RethinkDB when RETHINKDB_URL is set, else the SQL store.
    notes_store = stores.notes
    if tracer is not None:
        notes_store = tracing.Traced(notes_store, "notes", tracer)
    notes = Notes(notes_store)
    routes.add("/notes", notes)
    routes.add("/notes/{note_id}", notes, suffix="item")

    # Primes (SQL): all-or-nothing batches; /supply_primes is the seed's path.
    primes = Primes(stores.primes)
    routes.add("/primes", primes)
    routes.add("/primes/{n:int}", primes, suffix="item")
    routes.add("/supply_primes", primes, suffix="seed")

    # Links, the shortener. "/{code}" catches every other one-segment path:
    # Falcon prefers literal segments, and aliases may not take a route's name.
    routes.add("/links", links)
    routes.add("/links/bulk", links, suffix="bulk")
    routes.add("/links/{code}", links, suffix="item")
    routes.add("/links/{code}/visits", links, suffix="visits")
    routes.add("/links/{code}/stats", links, suffix="stats")
    routes.add("/links/{code}/qr", links, suffix="qr")
    routes.add("/{code}", Redirect(stores.links, settings.redirect_status))

    # Salaries: the City of Chicago salary file, loaded by
    # `python -m api import-salaries`.
    department_employees = salaries.DepartmentEmployees(stores.salaries)
    routes.add("/departments", salaries.Departments(stores.salaries))
    routes.add("/departments/{name}", salaries.DepartmentStats(stores.salaries))
    routes.add("/departments/{name}/employees", department_employees)
    routes.add(
        "/departments/{name}/employees.ndjson",
        salaries.DepartmentNdjson(stores.salaries),
    )
    routes.add(
        "/departments/{name}/employees.csv", salaries.DepartmentCsv(stores.salaries)
    )
    routes.add("/dept/{name}", salaries.SeedDepartmentEmployees(stores.salaries))
    routes.add("/employees", salaries.Employees(stores.salaries))

    # Collatz: the longest chain comes from the ZeroMQ workers through the
    # broker; one start's chain is computed here. The client connects lazily,
    # in the gunicorn worker that uses it.
    routes.add("/collatz", collatz_longest)
    routes.add("/collatz/{k:int}", CollatzChain(settings.collatz_max_n))
    ready_checks["collatz"] = collatz.ping

    # Webhooks: inbound deliveries, handled by workers.webhooks.runner;
    # outbound subscriptions, delivered by the push worker. The literal
    # /webhooks/deliveries wins over /webhooks/{source} in Falcon's router, so
    # parse_sources refuses a source named "deliveries".
    routes.add("/webhooks/deliveries", WebhookDeliveries(stores.webhooks))
    routes.add(
        "/webhooks/{source}",
        WebhookReceiver(
            webhook_sources,
            stores.webhooks,
            webhook_handlers,
            replay_window=settings.webhook_replay_window,
        ),
    )
    subscriptions = Subscriptions(stores.subscriptions, targets)
    routes.add("/subscriptions", subscriptions)
    routes.add(
        f"/subscriptions/{{subscription_id:{ID_CONVERTER}}}",
        subscriptions,
        suffix="item",
    )
    routes.add(
        f"/subscriptions/{{subscription_id:{ID_CONVERTER}}}/deliveries",
        subscriptions,
        suffix="deliveries",
    )
    routes.add(
        f"/subscriptions/{{subscription_id:{ID_CONVERTER}}}/replay",
        subscriptions,
        suffix="replay",
    )

    # Tickets that open the push worker's streams from a browser.
    routes.add(
        "/stream-tickets",
        StreamTickets(stores.secrets, settings.stream_ticket_ttl),
    )

    routes.add("/ready", Ready(ready_checks))
    # Under gunicorn, PROMETHEUS_MULTIPROC_DIR is the folder gunicorn.conf.py
    # made for the workers' metrics; empty (tests): this process's own.
    backends = Backends(stores.notes, stores.checkpoints, collatz)
    routes.add("/metrics", Metrics(backends, settings.metrics_dir))
    add_docs(routes, TITLE, __version__, [settings.public_base_url.rstrip("/")])
    return app


def _rate_limited(scope: str, links: Links):
    """What ``RATE_LIMIT_SCOPE`` limits: link creation, or every write."""
    if scope == "writes":
        return lambda method, resource: method in WRITE_METHODS
    if scope == "links":  # POST /links and /links/bulk
        return lambda method, resource: method == "POST" and resource is links
    raise ValueError(
        f"RATE_LIMIT_SCOPE must be one of {', '.join(SCOPES)}, got {scope!r}"
    )


def get_app() -> falcon.App:
    """The app for the settings in the environment, with logging set up."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    tracing.start(settings.tracing, "falcon-pypy-api")
    return create_app(settings)
