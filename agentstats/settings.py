"""Django settings: the only module that reads the environment."""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from rmq.nodes import parse_node_urls

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, *, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def _env_float(name: str, *, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number of seconds, got {raw!r}") from exc


def _env_list(name: str, *, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _env_node_urls(name: str, *, default: str, schemes: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return parse_node_urls(os.environ.get(name) or default, schemes=schemes)
    except ValueError as exc:
        # The position only: an entry may carry a password.
        raise ImproperlyConfigured(f"{name}: {exc}") from None


def _env_gc_thresholds(name: str, *, default: str) -> tuple[int, ...]:
    parts = _env_list(name, default=default)
    if len(parts) > 3 or not all(part.isdigit() for part in parts):
        raise ImproperlyConfigured(f"{name} must be up to 3 comma-separated non-negative integers")
    return tuple(int(part) for part in parts)


DEBUG = _env_bool("DEBUG", default=False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required unless DEBUG=true")
    SECRET_KEY = "insecure-development-only-key"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", default="127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "agentstats",
    "marketplace",
]

MIDDLEWARE = [
    # First: its id and timing cover the whole request, redirects and 503s included.
    "agentstats.request_log.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "agentstats.api.middleware.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Admin log-in attempts are throttled by django-axes: its app, its middleware last (it
# turns a lockout into the answer), its backend first (it refuses a locked-out login).
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# After ADMIN_LOGIN_FAILURE_LIMIT failed log-ins for one username from one address, that
# pair is locked out (429) for ADMIN_LOGIN_COOLOFF_SECONDS; attempts are kept in the
# database, so every worker shares them. A successful log-in resets the count.
AXES_FAILURE_LIMIT = int(_env_float("ADMIN_LOGIN_FAILURE_LIMIT", default=5))
AXES_COOLOFF_TIME = timedelta(seconds=_env_float("ADMIN_LOGIN_COOLOFF_SECONDS", default=900))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_HTTP_RESPONSE_CODE = 429
# Successful log-ins are not recorded (the table would only grow); failures are.
AXES_DISABLE_ACCESS_LOG = True
# No "AXES: BEGIN ..." INFO line at every start-up (each management command, each worker).
AXES_VERBOSE = False

ROOT_URLCONF = "agentstats.urls"
WSGI_APPLICATION = "agentstats.wsgi.application"
ASGI_APPLICATION = "agentstats.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(_env_float("DATABASE_CONN_MAX_AGE", default=60)),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "agentstats.User"

_cache_url = os.environ.get("CACHE_URL", "")
if _cache_url.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_url,
        }
    }
elif _cache_url in {"", "locmem://"}:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    raise ImproperlyConfigured("CACHE_URL must be redis://... or locmem:// (or unset)")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Upper bound of a request body; the agent's largest field is its config file.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(_env_float("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1_048_576))
# Largest accepted agent config_file_content, in characters.
AGENT_CONFIG_MAX_LENGTH = int(_env_float("AGENT_CONFIG_MAX_LENGTH", default=65_536))
# Largest accepted service statistics document, in bytes of JSON.
AGENT_STATISTICS_MAX_BYTES = int(_env_float("AGENT_STATISTICS_MAX_BYTES", default=65_536))

# Writes one user (agent token) may make to the agent API, e.g. "300/min"; empty: no limit.
AGENT_WRITE_THROTTLE_RATE = os.environ.get("AGENT_WRITE_THROTTLE_RATE", "300/min")

# Oldest agent version reported as compatible; empty means any parseable version is.
AGENT_MINIMUM_VERSION = os.environ.get("AGENT_MINIMUM_VERSION", "")

# Log lines agents ship (POST /api/marketplace-site-agent-logs/): most entries per batch
# (waldur-site-agent sends up to 100), longest message kept (longer ones are truncated),
# how far in the future a line's timestamp may be (the agent's clock runs ahead), how
# many days lines are kept (0 keeps them forever; the prune_agent_logs job deletes older
# ones).
AGENT_LOG_BATCH_MAX = int(_env_float("AGENT_LOG_BATCH_MAX", default=500))
AGENT_LOG_MESSAGE_MAX_LENGTH = int(_env_float("AGENT_LOG_MESSAGE_MAX_LENGTH", default=8192))
AGENT_LOG_MAX_FUTURE_SECONDS = _env_float("AGENT_LOG_MAX_FUTURE_SECONDS", default=300)
AGENT_LOG_RETENTION_DAYS = _env_float("AGENT_LOG_RETENTION_DAYS", default=30)
# How far ahead of this server's clock a time an agent reports (a dispatch's occurred_at,
# an identity's last_restarted) may be; later is a 400: a far-future time would pin the
# state derived from it (e.g. "degraded") for good.
AGENT_CLOCK_SKEW_SECONDS = _env_float("AGENT_CLOCK_SKEW_SECONDS", default=300)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "agentstats.api.pagination.LinkHeaderPagination",
    "PAGE_SIZE": 10,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "agentstats.api.errors.handle_api_exception",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["agentstats.api.parsers.BoundedJSONParser"],
}
# Largest page a client may ask for with ?page_size=.
API_MAX_PAGE_SIZE = int(_env_float("API_MAX_PAGE_SIZE", default=1000))
# Deepest nesting of objects and arrays a JSON request body may have (the body itself is
# level 1); deeper is a 400 on the field holding it. Far below Python's recursion limit,
# so nothing that walks a stored document (encoder, serializers) can exhaust it.
API_JSON_MAX_DEPTH = int(_env_float("API_JSON_MAX_DEPTH", default=64))
if not 2 <= API_JSON_MAX_DEPTH <= 500:
    raise ImproperlyConfigured(
        f"API_JSON_MAX_DEPTH must be from 2 to 500, got {API_JSON_MAX_DEPTH}"
    )

SPECTACULAR_SETTINGS = {
    "TITLE": "agentstats API",
    "DESCRIPTION": "Site agents, their services and event subscriptions, and their live "
    "RabbitMQ connection status. Wire-compatible with Waldur's marketplace site-agent API.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "AgentServiceStateEnum": "marketplace.names.AgentServiceState.choices",
        "ObservableObjectTypeEnum": "marketplace.names.ObservableObjectType.choices",
        "LevelEnum": "marketplace.names.LogLevel.values",
        "AlertingLevelEnum": "marketplace.names.ALERTING_LOG_LEVEL_VALUES",
    },
}

# The management API of one node, or of several nodes of a cluster as a comma-separated
# list: each call goes to the first node not remembered as down (rmq/client.py). The old
# single name is the first node.
RABBITMQ_MANAGEMENT_URLS = _env_node_urls(
    "RABBITMQ_MANAGEMENT_URL", default="http://127.0.0.1:15672", schemes=("http", "https")
)
RABBITMQ_MANAGEMENT_URL = RABBITMQ_MANAGEMENT_URLS[0]
# How long a node that refused, timed out or failed is skipped (per process) before it is
# asked again; while every node is remembered down, all are asked anyway, in order.
RABBITMQ_NODE_DOWN_SECONDS = _env_float("RABBITMQ_NODE_DOWN_SECONDS", default=10.0)
RABBITMQ_USER = os.environ.get("RABBITMQ_USER", "guest")
RABBITMQ_PASSWORD = os.environ.get("RABBITMQ_PASSWORD", "guest")
RABBITMQ_CONNECT_TIMEOUT = _env_float("RABBITMQ_CONNECT_TIMEOUT", default=2.0)
RABBITMQ_READ_TIMEOUT = _env_float("RABBITMQ_READ_TIMEOUT", default=5.0)
# Read timeout of the stats snapshot's bulk listings: a broker with tens of thousands
# of queues takes seconds to list them (1.5-11 s at 15,000 queues, docs/benchmarks.md),
# and with the shared snapshot only one request per BROKER_SNAPSHOT_TTL waits that long.
RABBITMQ_SNAPSHOT_READ_TIMEOUT = _env_float("RABBITMQ_SNAPSHOT_READ_TIMEOUT", default=15.0)
# Extra attempts for idempotent GETs after a connection error (never for writes).
RABBITMQ_GET_RETRIES = int(_env_float("RABBITMQ_GET_RETRIES", default=1))
# Largest management-API answer read (bytes); a larger one is a broker error, not a crash.
RABBITMQ_MAX_RESPONSE_BYTES = int(_env_float("RABBITMQ_MAX_RESPONSE_BYTES", default=64 * 2**20))
# Limits of each owner's vhost, set on every provisioning: max-queues is the queues its
# subscriptions and event consumers have plus the headroom, max-connections its broker users
# times the per-user allowance (a reconnect overlaps the old connection) plus the headroom.
# The headroom also absorbs concurrent registrations and queues left on the broker.
RABBITMQ_VHOST_LIMIT_HEADROOM = int(_env_float("RABBITMQ_VHOST_LIMIT_HEADROOM", default=5))
RABBITMQ_CONNECTIONS_PER_BROKER_USER = int(
    _env_float("RABBITMQ_CONNECTIONS_PER_BROKER_USER", default=3)
)

# /metrics: a token (Authorization: Bearer <METRICS_TOKEN>) or a client address in
# METRICS_ALLOWED_NETWORKS (CIDRs) is required; with neither configured it answers 403.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = _env_list("METRICS_ALLOWED_NETWORKS", default="127.0.0.1/32,::1/128")
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        # At start-up, naming the entry, rather than a 500 on every scrape.
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_NETWORKS: {_network!r} is not a network address or CIDR"
        ) from _exc

# The stats' shared broker snapshot (rmq/snapshot_cache.py; shared by every worker through
# the cache): older than BROKER_SNAPSHOT_TTL, a request starts a refresh beside it and is
# served the old one; older than BROKER_SNAPSHOT_MAX_AGE it is never served, and a request
# waits at most BROKER_SNAPSHOT_WAIT for a fetch before a 503. TTL 0 asks the broker on
# every request. The max age leaves a refresh started at the TTL time room for a slow fetch
# (RABBITMQ_CONNECT_TIMEOUT + RABBITMQ_SNAPSHOT_READ_TIMEOUT, 17 s) and the answer's build
# (seconds at 10,000 agents) before pollers go cold; answers are normally TTL + fetch + build
# old at most (docs/benchmarks.md measures the oldest served).
# After a failure, requests get a 503 at once and the broker is retried at most once per
# BROKER_FAILURE_TTL, so an outage answers fast without hiding a recovery.
BROKER_SNAPSHOT_TTL = _env_float("BROKER_SNAPSHOT_TTL", default=2.0)
BROKER_SNAPSHOT_MAX_AGE = _env_float("BROKER_SNAPSHOT_MAX_AGE", default=30.0)
BROKER_SNAPSHOT_WAIT = _env_float("BROKER_SNAPSHOT_WAIT", default=0.8)
BROKER_FAILURE_TTL = _env_float("BROKER_FAILURE_TTL", default=1.0)
if BROKER_SNAPSHOT_TTL > BROKER_SNAPSHOT_MAX_AGE:
    raise ImproperlyConfigured("BROKER_SNAPSHOT_TTL must not exceed BROKER_SNAPSHOT_MAX_AGE")
if BROKER_SNAPSHOT_WAIT < 0:
    raise ImproperlyConfigured("BROKER_SNAPSHOT_WAIT must not be negative")

# How often the admin's fleet dashboard refreshes its table in place, in seconds.
DASHBOARD_REFRESH_SECONDS = _env_float("DASHBOARD_REFRESH_SECONDS", default=5.0)

# Thresholds of Python's cyclic garbage collector in each server process (agentstats/wsgi.py):
# a stats answer for 1,000 agents allocates ~10^5 short-lived objects, and the default
# first threshold (700) runs hundreds of collections per request; empty keeps the default.
GC_THRESHOLDS = _env_gc_thresholds("GC_THRESHOLDS", default="50000,20,100")

# The connection envelope's thresholds (seconds unless named otherwise); see
# marketplace/envelope/status.py for the rules they feed.
AGENT_HEALTHY_SEEN_SECONDS = _env_float("AGENT_HEALTHY_SEEN_SECONDS", default=600)
AGENT_OFFLINE_AFTER_SECONDS = _env_float("AGENT_OFFLINE_AFTER_SECONDS", default=1800)
AGENT_DEGRADED_WINDOW_SECONDS = _env_float("AGENT_DEGRADED_WINDOW_SECONDS", default=900)
AGENT_FLAP_THRESHOLD = int(_env_float("AGENT_FLAP_THRESHOLD", default=5))
OBSERVER_STALE_AFTER_SECONDS = _env_float("OBSERVER_STALE_AFTER_SECONDS", default=60)
# How often the observer beats (it re-checks every connection against the management API
# when it (re)connects; the reconcile_connections job does it every period).
OBSERVER_HEARTBEAT_SECONDS = _env_float("OBSERVER_HEARTBEAT_SECONDS", default=5)
# One observe_connections process is active: it holds a lease in the database, renewed on
# every beat; the others stand by and poll for an expired or released lease. A SIGKILLed
# active observer is replaced within lease + poll (+ the new one's reconcile). The lease
# must outlast several beats (a slow beat is not a handover) and one reconcile.
OBSERVER_LEASE_SECONDS = _env_float("OBSERVER_LEASE_SECONDS", default=20)
OBSERVER_STANDBY_POLL_SECONDS = _env_float("OBSERVER_STANDBY_POLL_SECONDS", default=5)
if OBSERVER_HEARTBEAT_SECONDS <= 0 or OBSERVER_STANDBY_POLL_SECONDS <= 0:
    raise ImproperlyConfigured(
        "OBSERVER_HEARTBEAT_SECONDS and OBSERVER_STANDBY_POLL_SECONDS must be positive"
    )
if OBSERVER_LEASE_SECONDS < 3 * OBSERVER_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        f"OBSERVER_LEASE_SECONDS ({OBSERVER_LEASE_SECONDS:g}) must be at least three "
        f"OBSERVER_HEARTBEAT_SECONDS ({OBSERVER_HEARTBEAT_SECONDS:g}): the active observer "
        "renews its lease on every beat"
    )
# The management API lists a new connection 3-5 s after the broker announced it: a
# connection recorded from that announcement and not listed yet is closed by a reconcile
# only this long after it connected.
OBSERVER_RECONCILE_GRACE_SECONDS = _env_float("OBSERVER_RECONCILE_GRACE_SECONDS", default=30)
# AMQP URL(s) the observer consumes RabbitMQ's event exchange with: one node, or a
# comma-separated list of a cluster's nodes (it connects to the first that answers; the
# event exchange of any node carries every node's connection events). The old single name
# is the first node.
RABBITMQ_AMQP_URLS = _env_node_urls(
    "RABBITMQ_AMQP_URL", default="amqp://guest:guest@127.0.0.1:5672/%2F", schemes=("amqp", "amqps")
)
RABBITMQ_AMQP_URL = RABBITMQ_AMQP_URLS[0]
# The broker reconcile removes a queue, user or vhost of the service's own naming that no
# row explains only after it has stayed unexplained this long: registration declares on
# the broker before its transaction commits.
BROKER_ORPHAN_GRACE_SECONDS = _env_float("BROKER_ORPHAN_GRACE_SECONDS", default=900)

# Background jobs (marketplace/jobs/): each runs once per period across every scheduler
# process; a period of 0 (or less) turns the job off. The log-prune and reconcile periods
# still honour their former names, AGENT_LOG_PRUNE_INTERVAL_SECONDS and
# OBSERVER_RECONCILE_SECONDS, when only those are set.
JOB_MARK_IDLE_SERVICES_SECONDS = _env_float("JOB_MARK_IDLE_SERVICES_SECONDS", default=60)
JOB_PRUNE_AGENT_LOGS_SECONDS = _env_float(
    "JOB_PRUNE_AGENT_LOGS_SECONDS",
    default=_env_float("AGENT_LOG_PRUNE_INTERVAL_SECONDS", default=3600),
)
JOB_RECONCILE_CONNECTIONS_SECONDS = _env_float(
    "JOB_RECONCILE_CONNECTIONS_SECONDS",
    default=_env_float("OBSERVER_RECONCILE_SECONDS", default=60),
)
JOB_PRUNE_JOB_RUNS_SECONDS = _env_float("JOB_PRUNE_JOB_RUNS_SECONDS", default=3600)
# The broker reconcile (re-declares missing queues, removes unexplained own objects after
# BROKER_ORPHAN_GRACE_SECONDS) and the broker-credential revocation sweep (the safety net
# of the signal path: revocation is bounded by this period, so keep it under 60 s).
JOB_RECONCILE_BROKER_SECONDS = _env_float("JOB_RECONCILE_BROKER_SECONDS", default=300)
JOB_REVOKE_BROKER_CREDENTIALS_SECONDS = _env_float(
    "JOB_REVOKE_BROKER_CREDENTIALS_SECONDS", default=30
)
# Days the record of job runs (JobRun rows) is kept.
JOB_RUN_RETENTION_DAYS = _env_float("JOB_RUN_RETENTION_DAYS", default=7)
# A service whose newest processor run is older than this is marked Idle (upstream: 10 min).
AGENT_SERVICE_IDLE_AFTER_SECONDS = _env_float("AGENT_SERVICE_IDLE_AFTER_SECONDS", default=600)

# How log lines are written: "plain" for people, "json" for machines (one JSON object per
# line, by python-json-logger, with the request log's fields as keys).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower() or "plain"
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601 in UTC
        },
    },
    # Every line logged while a request is served carries its request_id (and never the
    # request object, whose repr holds the query string).
    "filters": {"request_context": {"()": "agentstats.request_log.RequestContextFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # The job scheduler logs every firing at INFO; our engine logs each run's outcome.
    "loggers": {"apscheduler": {"level": "WARNING"}},
}

if not DEBUG:
    # Production: HTTPS only. Behind a TLS-terminating proxy set
    # TRUST_X_FORWARDED_PROTO=true so Django knows a request came in over HTTPS.
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = _env_bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = int(_env_float("SECURE_HSTS_SECONDS", default=31_536_000))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", default=False)
    if _env_bool("TRUST_X_FORWARDED_PROTO", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # The service's own health probes and metrics scrapes may come over plain HTTP inside
    # the private network.
    SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
    # The liveness and readiness probes (agentstats/api/health.py), which the container's
    # HEALTHCHECK and orchestrators call over plain HTTP on the app's own port.
    SECURE_REDIRECT_EXEMPT += [r"^healthz$", r"^readyz$"]
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
