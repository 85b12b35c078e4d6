"""One frozen settings object, read from environment variables.

Every setting has a documented default (docs/operations/settings.md); nothing
else in the project reads ``os.environ``.
"""

import dataclasses
import os
from collections.abc import Mapping
from typing import Callable
from typing import Optional

from core import redact


def _env_field(
    name: str, default, doc: str, mask: Optional[Callable[[str], str]] = None
):
    """A setting read from ``name``; ``mask`` hides its secrets when it is shown."""
    return dataclasses.field(
        default=default, metadata={"env": name, "doc": doc, "mask": mask}
    )


@dataclasses.dataclass(frozen=True)
class Settings:
    """Runtime configuration; build it with :meth:`from_env` or directly in tests."""

    # Server
    host: str = _env_field("HOST", "127.0.0.1", "address gunicorn binds to")
    port: int = _env_field("PORT", 8000, "port gunicorn binds to")
    workers: int = _env_field(
        "WORKERS",
        0,
        "gunicorn worker processes; 0: one per core under PyPy, "
        "2 x cores + 1 (at most 8) under CPython",
    )
    worker_class: str = _env_field(
        "WORKER_CLASS", "gevent", "gunicorn worker class: gevent, sync or gthread"
    )
    threads: int = _env_field(
        "THREADS", 1, "threads per worker (gthread); more than 1 makes sync gthread"
    )
    log_level: str = _env_field("LOG_LEVEL", "info", "log level of every process")
    access_log: str = _env_field(
        "ACCESS_LOG",
        "",
        "gunicorn's access log: '-' for standard output, or a file; empty: none",
    )
    auth: str = _env_field(
        "AUTH",
        "on",
        "on: private calls need an API key (docs/operations/security.md); off: "
        "nothing asks for one (a trusted network only)",
    )
    allowed_hosts: str = _env_field(
        "ALLOWED_HOSTS",
        "",
        "Host names the API and the push worker answer besides the loopback "
        "names and PUBLIC_BASE_URL's host, comma-separated (.example.com: the "
        "domain and its subdomains; *: any); other Host headers get 400",
    )
    trusted_proxies: str = _env_field(
        "TRUSTED_PROXIES",
        "",
        "addresses and networks of the load balancers and proxies in front of "
        "the API, comma-separated (10.0.0.5,172.18.0.0/16): from them, the "
        "client is the right-most X-Forwarded-For address that is not one of "
        "them; empty: the header is ignored and the connection's address is "
        "the client (docs/operations/security.md)",
    )
    max_body_bytes: int = _env_field(
        "MAX_BODY_BYTES", 1024 * 1024, "largest request body accepted (413 above)"
    )
    log_format: str = _env_field(
        "LOG_FORMAT",
        "",
        "text, json (one JSON object per line) or auto (text on a terminal, "
        "JSON otherwise); empty: text",
    )
    tracing: str = _env_field(
        "TRACING",
        "off",
        "OpenTelemetry traces of the API and the push worker: off; otlp (OTLP "
        "over HTTP to OTEL_EXPORTER_OTLP_ENDPOINT, default "
        "http://localhost:4318); console (one JSON line per span on standard "
        "output). The SDK's OTEL_* variables apply (docs/operations/tracing.md)",
    )
    metrics_dir: str = _env_field(
        "PROMETHEUS_MULTIPROC_DIR",
        "",
        "folder the gunicorn workers share their metrics in; empty: a fresh "
        "temporary one per start",
    )

    # Stores
    database_url: str = _env_field(
        "DATABASE_URL",
        "sqlite:///var/api.db",
        "SQLAlchemy URL of the SQL store",
        mask=redact.mask_url,
    )
    rethinkdb_url: Optional[str] = _env_field(
        "RETHINKDB_URL",
        None,
        "rethinkdb://host:28015/db (or h1:28015,h2:28015,.../db, a cluster; "
        "?ca=FILE: TLS) selects RethinkDB for notes; unset: SQLite",
        mask=redact.mask_url,
    )
    rethinkdb_timeout: float = _env_field(
        "RETHINKDB_TIMEOUT", 5.0, "seconds to wait for a RethinkDB connect or answer"
    )
    rethinkdb_table: str = _env_field(
        "RETHINKDB_TABLE", "notes", "RethinkDB notes table (log: <table>_changes)"
    )
    rethinkdb_replicas: int = _env_field(
        "RETHINKDB_REPLICAS", 1, "replicas of each RethinkDB table init-db creates"
    )

    # Links (the shortener)
    public_base_url: str = _env_field(
        "PUBLIC_BASE_URL", "http://127.0.0.1:8000", "base of the short URLs handed out"
    )
    redirect_status: int = _env_field(
        "REDIRECT_STATUS", 302, "status of a short-link redirect: 301, 302, 307, 308"
    )
    allowed_private_targets: str = _env_field(
        "ALLOWED_PRIVATE_TARGETS",
        "",
        "hosts and networks links and webhooks may target although private "
        "(localhost,127.0.0.0/8,::1); * allows all",
    )
    visit_salt: str = _env_field(
        "VISIT_SALT",
        "",
        "secret salt of the visitor-address hash; empty: random per process",
        mask=redact.mask_all,
    )
    visit_flush_interval: float = _env_field(
        "VISIT_FLUSH_INTERVAL",
        1.0,
        "seconds between two batched writes of the visits of links without "
        "max_visits; 0: each visit is written in its request",
    )

    # Rate limits
    rate_limit: str = _env_field(
        "RATE_LIMIT",
        "",
        "requests per client, such as 100/minute or 5/second (a token bucket "
        "shared by every worker); empty or off: no limit",
    )
    rate_limit_scope: str = _env_field(
        "RATE_LIMIT_SCOPE",
        "links",
        "what RATE_LIMIT limits: links (POST /links and /links/bulk) or writes "
        "(every POST, PUT, PATCH and DELETE)",
    )
    collatz_rate_limit: str = _env_field(
        "COLLATZ_RATE_LIMIT",
        "60/minute",
        "GET /collatz requests per client (a new large n costs the workers "
        "seconds); off: no limit",
    )

    # Collatz
    collatz_frontend: str = _env_field(
        "COLLATZ_FRONTEND", "tcp://127.0.0.1:5555", "broker endpoint clients use"
    )
    collatz_backend: str = _env_field(
        "COLLATZ_BACKEND", "tcp://127.0.0.1:5560", "broker endpoint workers use"
    )
    collatz_max_n: int = _env_field(
        "COLLATZ_MAX_N", 10**8, "largest n accepted by GET /collatz"
    )
    collatz_timeout: float = _env_field(
        "COLLATZ_TIMEOUT", 30.0, "seconds to wait for the workers (503 after)"
    )

    # ZeroMQ (the collatz broker and the push worker's PUB socket)
    zmq_auth: str = _env_field(
        "ZMQ_AUTH",
        "on",
        "on: CURVE when ZMQ_KEYS_DIR is set, and a broker or PUB socket bound "
        "beyond loopback without it refuses to start; off: no CURVE (a "
        "trusted network only)",
    )
    zmq_keys_dir: str = _env_field(
        "ZMQ_KEYS_DIR",
        "",
        "folder of the CURVE keys made by 'python -m api zmq-keys'; each "
        "process reads its own files there; empty: no CURVE",
    )

    # Webhooks and push worker
    webhook_sources: str = _env_field(
        "WEBHOOK_SOURCES",
        "",
        "inbound webhook sources as JSON (docs/user/webhooks.md)",
        mask=redact.mask_webhook_sources,
    )
    webhook_replay_window: float = _env_field(
        "WEBHOOK_REPLAY_WINDOW",
        86400.0,
        "seconds a GitHub-scheme body is remembered: the same body under a new "
        "delivery id within it is refused (409) as a replay; 0: off",
    )
    pg_listen: str = _env_field(
        "PG_LISTEN",
        "on",
        "on: with a PostgreSQL DATABASE_URL the push worker and the webhook "
        "runner LISTEN for the NOTIFY of every note commit and stored "
        "delivery, made on any machine (a session of their own each: not "
        "through a transaction-pooling PgBouncer); off: they poll (the push "
        "worker also waits on PUSH_WAKE_ADDRESS)",
    )
    webhook_poll_interval: float = _env_field(
        "WEBHOOK_POLL_INTERVAL", 0.5, "seconds the webhook runner waits when idle"
    )
    webhook_handler_attempts: int = _env_field(
        "WEBHOOK_HANDLER_ATTEMPTS", 5, "attempts of a failing webhook handler"
    )
    webhook_lease: float = _env_field(
        "WEBHOOK_LEASE",
        120.0,
        "seconds a runner holds a claimed delivery: one whose runner died is "
        "handled again after it (longer than the slowest handler)",
    )
    subscription_timeout: float = _env_field(
        "SUBSCRIPTION_TIMEOUT", 10.0, "seconds an outbound webhook attempt may take"
    )
    subscription_max_attempts: int = _env_field(
        "SUBSCRIPTION_MAX_ATTEMPTS", 5, "attempts per outbound event, retries included"
    )
    subscription_max_failures: int = _env_field(
        "SUBSCRIPTION_MAX_FAILURES",
        5,
        "failed deliveries in a row that disable a subscription",
    )
    push_pub_endpoint: str = _env_field(
        "PUSH_PUB_ENDPOINT",
        "tcp://127.0.0.1:5556",
        "ZeroMQ PUB endpoint of note events",
    )
    push_sse_bind: str = _env_field(
        "PUSH_SSE_BIND", "127.0.0.1:8001", "host:port of the push worker's /events"
    )
    push_allowed_origins: str = _env_field(
        "PUSH_ALLOWED_ORIGINS",
        "",
        "origins (https://app.example.com) whose pages may open the push "
        "worker's streams besides its own, comma-separated",
    )
    push_header_timeout: float = _env_field(
        "PUSH_HEADER_TIMEOUT",
        5.0,
        "seconds a client of the push worker's HTTP port has to send its "
        "request headers; slower ones are closed",
    )
    push_max_connections_per_client: int = _env_field(
        "PUSH_MAX_CONNECTIONS_PER_CLIENT",
        64,
        "connections one client address may hold open on the push worker's "
        "HTTP port (streams included; more get 429); 0: no cap",
    )
    stream_ticket_ttl: int = _env_field(
        "STREAM_TICKET_TTL",
        60,
        "seconds a stream ticket (POST /stream-tickets) may open streams for",
    )
    push_wake_address: str = _env_field(
        "PUSH_WAKE_ADDRESS",
        "127.0.0.1:5557",
        "UDP host:port the API nudges the push worker on after each note "
        "commit (one machine; on PostgreSQL the worker LISTENs instead, see "
        "PG_LISTEN); empty: no nudges",
    )
    push_poll_interval: float = _env_field(
        "PUSH_POLL_INTERVAL",
        1.0,
        "seconds between the push worker's reads of the SQL change log when "
        "no nudge comes (0.05 when it cannot listen for nudges)",
    )

    # Retention (pruned by the push worker: docs/operations/retention.md)
    notes_log_retention_days: float = _env_field(
        "NOTES_LOG_RETENTION_DAYS",
        7.0,
        "days the notes change log keeps a change (for SSE, WebSocket and "
        "webhook resumes and replays); a reader further behind gets a reset "
        "event; 0: keep forever",
    )
    webhook_retention_days: float = _env_field(
        "WEBHOOK_RETENTION_DAYS",
        30.0,
        "days finished webhook deliveries are kept (inbound ones at least "
        "WEBHOOK_REPLAY_WINDOW; outbound attempts); 0: keep forever",
    )
    visit_retention_days: float = _env_field(
        "VISIT_RETENTION_DAYS",
        90.0,
        "days raw link visits are kept (statistics come from the hourly and "
        "daily rollup, kept forever); 0: keep forever",
    )
    retention_interval: float = _env_field(
        "RETENTION_INTERVAL",
        300.0,
        "seconds between two pruning rounds of the push worker",
    )
    retention_batch: int = _env_field(
        "RETENTION_BATCH",
        500,
        "rows removed per transaction when pruning (1 to 10000)",
    )

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Settings":
        """Settings from ``environ`` (default ``os.environ``), types converted."""
        environ = os.environ if environ is None else environ
        values = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(field.metadata["env"])
            if raw is None or raw == "":
                continue
            values[field.name] = _convert(field, raw)
        return cls(**values)

    def describe(self):
        """Yield ``(ENV_NAME, value, default, doc)`` for every setting, to show.

        Secrets are masked (passwords in URLs, salts, webhook secrets); the
        values to use are the attributes.
        """
        for field in dataclasses.fields(self):
            env, doc, mask = (field.metadata[key] for key in ("env", "doc", "mask"))
            value, default = getattr(self, field.name), field.default
            if mask is not None:
                value, default = (
                    mask(item) if isinstance(item, str) else item
                    for item in (value, default)
                )
            yield env, value, default, doc


def default_workers(implementation: str, cores: int) -> int:
    """Gunicorn workers when ``WORKERS`` is 0, for ``platform.python_implementation()``.

    One per core under PyPy: each worker's JIT warms up on the requests it
    serves, so fewer workers reach full speed sooner, and fewer processes
    queue for SQLite's write lock (docs/decisions/0001-workers-per-core.md).
    2 x cores + 1, at most 8, under CPython (gunicorn's usual advice).
    """
    cores = max(cores, 1)
    if implementation == "PyPy":
        return cores
    return min(2 * cores + 1, 8)


def _convert(field: dataclasses.Field, raw: str):
    kind = type(field.default)
    if field.default is None or kind is str:
        return raw
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(
            f"{field.metadata['env']}={raw!r} is not a valid {kind.__name__}"
        ) from None
