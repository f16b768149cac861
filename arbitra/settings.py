"""Arbitra settings: one module, read from the environment.

Every value has a default that works on a developer machine (the embedded PostgreSQL and Redis
that `manage.py up` starts listen on the default URLs below). With ARBITRA_ENV=production the
values that must never fall back to a default (secret key, database, Redis, hosts) are required.
A malformed value stops start-up with a message naming the variable.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from urllib.parse import urlsplit

import environ

from arbitra.configuration import ConfigurationError

BASE_DIR = Path(__file__).resolve().parent.parent
# Project-local state of the embedded services (database files, Redis AOF, generated secrets).
STATE_DIR = Path(os.environ.get("ARBITRA_STATE_DIR", BASE_DIR / ".arbitra"))

EMBEDDED_POSTGRES_PORT = 54329
EMBEDDED_REDIS_PORT = 63799
DEFAULT_DATABASE_URL = f"postgresql://postgres@127.0.0.1:{EMBEDDED_POSTGRES_PORT}/arbitra"
DEFAULT_REDIS_URL = f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"

env = environ.Env()
_URL_EXAMPLES = {
    "postgres": "postgresql://user@host:5432/arbitra",
    "redis": "redis://host:6379/0",
    "http": "https://data-api.polymarket.com",
}


class _Settings:
    """Typed readers that name the variable when its value cannot be used."""

    def __init__(self, environment: environ.Env) -> None:
        self.env = environment
        self.production = os.environ.get("ARBITRA_ENV", "local").strip().lower() == "production"

    def _raw(self, name: str, default: str | None, *, required_in_production: bool) -> str:
        value = os.environ.get(name)
        if value is None or value.strip() == "":
            if self.production and required_in_production:
                raise ConfigurationError(name, None, "a value (required when ARBITRA_ENV=production)")
            if default is None:
                raise ConfigurationError(name, None, "a value")
            return default
        return value.strip()

    def string(self, name: str, default: str, *, required_in_production: bool = False) -> str:
        return self._raw(name, default, required_in_production=required_in_production)

    def boolean(self, name: str, default: bool) -> bool:
        value = self._raw(name, "true" if default else "false", required_in_production=False)
        truthy, falsy = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
        if value.lower() in truthy:
            return True
        if value.lower() in falsy:
            return False
        raise ConfigurationError(name, value, "a boolean: true/false, 1/0, yes/no or on/off")

    def integer(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self._raw(name, str(default), required_in_production=False)
        expected = "an integer" if minimum is None else f"an integer ≥ {minimum}"
        if maximum is not None:
            expected += f" and ≤ {maximum}"
        try:
            number = int(value)
        except ValueError:
            raise ConfigurationError(name, value, expected) from None
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            raise ConfigurationError(name, value, expected)
        return number

    def number(self, name: str, default: float, *, positive: bool = False, minimum: float | None = None) -> float:
        value = self._raw(name, str(default), required_in_production=False)
        if positive:
            expected = "a number > 0"
        elif minimum is not None:
            expected = f"a number ≥ {minimum:g}"
        else:
            expected = "a number"
        try:
            number = float(value)
        except ValueError:
            raise ConfigurationError(name, value, expected) from None
        if not math.isfinite(number) or (positive and number <= 0) or (minimum is not None and number < minimum):
            raise ConfigurationError(name, value, expected)
        return number

    def choice(self, name: str, default: str, *, choices: tuple[str, ...], normalise=str.lower) -> str:
        value = normalise(self._raw(name, default, required_in_production=False))
        if value not in choices:
            raise ConfigurationError(name, value, "one of " + ", ".join(choices))
        return value

    def url(self, name: str, default: str, *, schemes: tuple[str, ...], required_in_production: bool = True) -> str:
        value = self._raw(name, default, required_in_production=required_in_production)
        example = _URL_EXAMPLES.get(schemes[0], f"{schemes[0]}://host")
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018 - a non-numeric port raises here
        except ValueError:
            raise ConfigurationError(name, value, f"a URL with a numeric port, e.g. {example}") from None
        if parts.scheme not in schemes or not (parts.hostname or parts.path.strip("/")):
            raise ConfigurationError(name, value, f"a URL with scheme {' or '.join(schemes)}, e.g. {example}")
        return value

    def csv(self, name: str, default: str, *, required_in_production: bool = False) -> list[str]:
        value = self._raw(name, default, required_in_production=required_in_production)
        return [item.strip() for item in value.split(",") if item.strip()]


read = _Settings(env)
PRODUCTION = read.production

DEBUG = read.boolean("DEBUG", False)


def _install_secret_key() -> str:
    """Outside production, a key generated once per install and kept in the state folder: never a
    key committed to the repository, which anyone could use to forge sessions."""
    key_file = STATE_DIR / "secret_key"
    with contextlib.suppress(OSError):
        if key_file.is_file() and key_file.read_text(encoding="utf-8").strip():
            return key_file.read_text(encoding="utf-8").strip()
    import secrets

    key = secrets.token_urlsafe(50)
    try:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
            handle.write(key)
    except FileExistsError:
        return key_file.read_text(encoding="utf-8").strip()  # another process wrote it first
    except OSError:
        pass  # a read-only checkout: this process's key, sessions end with it
    return key


SECRET_KEY = read.string("SECRET_KEY", "", required_in_production=True) or _install_secret_key()
ALLOWED_HOSTS = read.csv("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver", required_in_production=True)
CSRF_TRUSTED_ORIGINS = read.csv("CSRF_TRUSTED_ORIGINS", "http://localhost:8000,http://127.0.0.1:8000")

DATABASE_URL = read.url("DATABASE_URL", DEFAULT_DATABASE_URL, schemes=("postgres", "postgresql"))
REDIS_URL = read.url("REDIS_URL", DEFAULT_REDIS_URL, schemes=("redis", "rediss"))
# The broker may live in its own Redis database so that flushing app keys never drops queued tasks.
CELERY_BROKER_URL = read.url("CELERY_BROKER_URL", REDIS_URL, schemes=("redis", "rediss"), required_in_production=False)
CELERY_RESULT_BACKEND = read.url(
    "CELERY_RESULT_BACKEND", CELERY_BROKER_URL, schemes=("redis", "rediss"), required_in_production=False
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "django_celery_beat",
    "arbitra",
    "ingest",
    "marts",
    "scoring",
    "api",
    "devtools",
]

MIDDLEWARE = [
    "arbitra.middleware.RequestIdMiddleware",
    "arbitra.middleware.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves admin and API-docs assets from gunicorn itself: no separate web server needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    # After CORS and security: a refused request still carries their headers.
    "arbitra.middleware.RequestLimitsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "arbitra.urls"
WSGI_APPLICATION = "arbitra.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "arbitra" / "templates"],
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

DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = read.integer("DB_CONN_MAX_AGE", 60, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
# Server-side prepared statements only where the code asks for one (execute(prepare=True): the
# ingest page statements, run on every page with the same text): Django turns psycopg's
# preparation off altogether (prepare_threshold None), which silently ignores prepare=True, and
# a threshold nothing else reaches keeps every other query unprepared, as Django has it.
DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 2**31 - 1
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "arbitra:cache",
        # A Redis that does not answer must not hold a request: the API reads around the cache.
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = STATE_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# WhiteNoise warns on every start when the folder is missing (tests, first run).
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Without collectstatic (tests, a first `runserver`) WhiteNoise finds files through the finders.
WHITENOISE_USE_FINDERS = True

# --- Logging -------------------------------------------------------------------------------
LOG_LEVEL = read.choice("LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), normalise=str.upper)
LOG_FORMAT = read.choice("LOG_FORMAT", "text", choices=("text", "json"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "arbitra.logging.ContextFilter"},
        # Watchlist fingerprints sent as ?fingerprint= never reach a log line.
        "redact_fingerprint": {"()": "api.access_log.RedactFingerprintFilter"},
    },
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(context_id)s] %(message)s"},
        "json": {"()": "arbitra.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context", "redact_fingerprint"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "celery": {"level": LOG_LEVEL},
    },
}

# --- Celery ----------------------------------------------------------------------------------
# Tasks must not be lost: acknowledge after the task ran, requeue when the worker dies, and take
# one message at a time so a killed worker strands at most the task it was running.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = read.integer("CELERY_TASK_SOFT_TIME_LIMIT", 540, minimum=1)
CELERY_TASK_TIME_LIMIT = read.integer("CELERY_TASK_TIME_LIMIT", 600, minimum=1)
# Redis redelivers an unacknowledged message after the visibility timeout; it must exceed the
# hard time limit, or a task still running would be handed to a second worker.
CELERY_VISIBILITY_TIMEOUT = read.integer("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)
# The soft limit lets a task clean up before the hard one kills it.
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
    raise ConfigurationError(
        "CELERY_TASK_SOFT_TIME_LIMIT", str(CELERY_TASK_SOFT_TIME_LIMIT),
        f"a value below CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT})",
    )
if CELERY_VISIBILITY_TIMEOUT <= CELERY_TASK_TIME_LIMIT:
    raise ConfigurationError(
        "CELERY_VISIBILITY_TIMEOUT", str(CELERY_VISIBILITY_TIMEOUT),
        f"a value above CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT})",
    )
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_DEFAULT_QUEUE = "compute"
CELERY_TASK_ROUTES = {
    "ingest.*": {"queue": "ingest"},
    "marts.*": {"queue": "compute"},
    "scoring.*": {"queue": "compute"},
}
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# django-celery-beat's DatabaseScheduler behind a lock: a second beat waits instead of doubling every task.
CELERY_BEAT_SCHEDULER = "arbitra.beat:SingleBeatScheduler"

FLOWER_USER = read.string("FLOWER_USER", "admin")
FLOWER_PASSWORD = read.string("FLOWER_PASSWORD", "")
# A file holding the Flower password (a mounted secret) instead of the variable itself.
FLOWER_PASSWORD_FILE = read.string("FLOWER_PASSWORD_FILE", "")
if PRODUCTION and not (FLOWER_PASSWORD or FLOWER_PASSWORD_FILE):
    raise ConfigurationError("FLOWER_PASSWORD", None, "a value or FLOWER_PASSWORD_FILE (required when ARBITRA_ENV=production)")
FLOWER_PORT = read.integer("FLOWER_PORT", 5555, minimum=1)
# Bearer token for /metrics scrapers; without one only loopback and staff sessions may read it.
METRICS_TOKEN = read.string("METRICS_TOKEN", "", required_in_production=True)
WEB_PORT = read.integer("WEB_PORT", 8000, minimum=1)
for _port_variable, _port in (("FLOWER_PORT", FLOWER_PORT), ("WEB_PORT", WEB_PORT)):
    if _port > 65535:
        raise ConfigurationError(_port_variable, str(_port), "a TCP port from 1 to 65535")

# --- Upstream sources ------------------------------------------------------------------------
# While `manage.py up` runs the demo it names its emulator here (and removes the file when it
# stops), so commands run beside the demo — replay, ingest --once, verify_upstream — read the same
# upstream as its workers instead of the real hosts. Variables set in the environment win.
RUNNING_DEMO_UPSTREAM_FILE = STATE_DIR / "upstream.env"


def _running_demo_upstream() -> dict[str, str]:
    if read.production or not RUNNING_DEMO_UPSTREAM_FILE.is_file():
        return {}
    lines = RUNNING_DEMO_UPSTREAM_FILE.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


_demo_upstream = _running_demo_upstream()
POLYMARKET_DATA_API_URL = read.url(
    "POLYMARKET_DATA_API_URL", _demo_upstream.get("POLYMARKET_DATA_API_URL", "https://data-api.polymarket.com"),
    schemes=("http", "https"), required_in_production=False,
)
POLYMARKET_GAMMA_API_URL = read.url(
    "POLYMARKET_GAMMA_API_URL", _demo_upstream.get("POLYMARKET_GAMMA_API_URL", "https://gamma-api.polymarket.com"),
    schemes=("http", "https"), required_in_production=False,
)
HTTP_TIMEOUT_SECONDS = read.number("HTTP_TIMEOUT_SECONDS", 15.0, positive=True)
HTTP_MAX_ATTEMPTS = read.integer("HTTP_MAX_ATTEMPTS", 5, minimum=1)
HTTP_BACKOFF_BASE_SECONDS = read.number("HTTP_BACKOFF_BASE_SECONDS", 0.5, minimum=0)
HTTP_BACKOFF_MAX_SECONDS = read.number("HTTP_BACKOFF_MAX_SECONDS", 30.0, minimum=0)
# Multiplies the published Polymarket limits; below 1 keeps a safety margin when several
# deployments share one egress address.
RATE_LIMIT_FACTOR = read.number("RATE_LIMIT_FACTOR", 1.0, positive=True)
SOURCE_CONCURRENCY = read.integer("SOURCE_CONCURRENCY", 4, minimum=1)
CIRCUIT_BREAKER_THRESHOLD = read.integer("CIRCUIT_BREAKER_THRESHOLD", 5, minimum=1)
CIRCUIT_BREAKER_RESET_SECONDS = read.number("CIRCUIT_BREAKER_RESET_SECONDS", 60.0, positive=True)

# Rows asked for on the first page of a v2 walk (the upstream allows up to 1,000; the cursor
# carries the size after that).
INGEST_TRADES_PAGE_SIZE = read.integer("INGEST_TRADES_PAGE_SIZE", 1000, minimum=1, maximum=1000)
# Trade walks decode, parse and prepare their next page in a helper process per ingest process
# (ingest.helper_process): off the GIL the page being written needs. Off, it happens on the
# walk's reader thread (a one-core machine gains nothing from a second process).
INGEST_PAGE_HELPER_PROCESS = read.boolean("INGEST_PAGE_HELPER_PROCESS", True)
# Consecutive pages of a trade walk written at once, each on its own connection (walk._PageWriters):
# the second uses the second core while the first waits on PostgreSQL. 1: one page at a time.
INGEST_PAGE_WRITERS = read.integer("INGEST_PAGE_WRITERS", 2, minimum=1, maximum=4)
# The live walk re-reads the upstream's serving lag (/v2/status) below its high-water mark, so a
# fill that became visible late is still read; the lag is clamped to [floor, ceiling] and a
# margin added. A lag beyond the ceiling is a recorded gap, not a silent miss.
INGEST_SERVING_LAG_FLOOR_SECONDS = read.integer("INGEST_SERVING_LAG_FLOOR_SECONDS", 10, minimum=0)
INGEST_SERVING_LAG_CEILING_SECONDS = read.integer("INGEST_SERVING_LAG_CEILING_SECONDS", 900, minimum=1)
INGEST_OVERLAP_MARGIN_SECONDS = read.integer("INGEST_OVERLAP_MARGIN_SECONDS", 30, minimum=0)
# A gap whose sweeps keep failing this often is marked exhausted: a visible loss event.
INGEST_GAP_MAX_ATTEMPTS = read.integer("INGEST_GAP_MAX_ATTEMPTS", 20, minimum=1)
# trade_fill is partitioned by month (ingest.partitions): how often beat creates the months ahead
# and moves fills parked in the default partition into theirs.
PARTITIONS_MAINTAIN_INTERVAL_SECONDS = read.integer("PARTITIONS_MAINTAIN_INTERVAL_SECONDS", 3600, minimum=60)
# Landed trade pages (raw records as received) are kept this many days by the month they were
# received in, then detached from the landing and dropped, or with `detach` kept as plain tables
# for an operator to export (pg_dump -t) and drop. 0 keeps them forever. Facts are never dropped.
LANDING_RETENTION_DAYS = read.integer("LANDING_RETENTION_DAYS", 180, minimum=0)
LANDING_RETENTION_ACTION = read.choice("LANDING_RETENTION_ACTION", "drop", choices=("drop", "detach"))
# Per-wallet v2 streams (activity for the ledger, positions for reconciliation, resolutions).
INGEST_ACTIVITY_WALLETS_PER_RUN = read.integer("INGEST_ACTIVITY_WALLETS_PER_RUN", 50, minimum=1)
INGEST_ACTIVITY_INTERVAL_SECONDS = read.integer("INGEST_ACTIVITY_INTERVAL_SECONDS", 60, minimum=1)
INGEST_POSITIONS_INTERVAL_SECONDS = read.integer("INGEST_POSITIONS_INTERVAL_SECONDS", 300, minimum=1)
INGEST_RESOLUTIONS_INTERVAL_SECONDS = read.integer("INGEST_RESOLUTIONS_INTERVAL_SECONDS", 60, minimum=1)
# A first poll (no cursor yet) reads this far back; older history comes from the wallet backfill.
INGEST_TRADES_INITIAL_SECONDS = read.integer("INGEST_TRADES_INITIAL_SECONDS", 3600, minimum=0)
INGEST_WALLET_PAGES_PER_RUN = read.integer("INGEST_WALLET_PAGES_PER_RUN", 10, minimum=1)
INGEST_MAX_PAGES_PER_RUN = read.integer("INGEST_MAX_PAGES_PER_RUN", 200, minimum=1)
INGEST_BACKFILL_WALLETS_PER_RUN = read.integer("INGEST_BACKFILL_WALLETS_PER_RUN", 20, minimum=1)
INGEST_MARKETS_PAGE_SIZE = read.integer("INGEST_MARKETS_PAGE_SIZE", 500, minimum=1)
INGEST_TRADES_INTERVAL_SECONDS = read.integer("INGEST_TRADES_INTERVAL_SECONDS", 10, minimum=1)
INGEST_MARKETS_INTERVAL_SECONDS = read.integer("INGEST_MARKETS_INTERVAL_SECONDS", 300, minimum=1)
INGEST_OFFCHAIN_INTERVAL_SECONDS = read.integer("INGEST_OFFCHAIN_INTERVAL_SECONDS", 60, minimum=1)
INGEST_BACKFILL_INTERVAL_SECONDS = read.integer("INGEST_BACKFILL_INTERVAL_SECONDS", 30, minimum=1)
COMPUTE_DRAIN_INTERVAL_SECONDS = read.integer("COMPUTE_DRAIN_INTERVAL_SECONDS", 5, minimum=1)
COMPUTE_RECONCILE_INTERVAL_SECONDS = read.integer("COMPUTE_RECONCILE_INTERVAL_SECONDS", 300, minimum=1)
# The wallet ledger re-reads the wallets whose /v2/activity or /v2/positions landed since its last run.
COMPUTE_LEDGER_INTERVAL_SECONDS = read.integer("COMPUTE_LEDGER_INTERVAL_SECONDS", 30, minimum=1)

# --- Compute (marts, scoring) ------------------------------------------------------------------
# Trades are paired with the first off-chain event of their market within this horizon.
INFO_EDGE_HORIZON_MINUTES = read.integer("INFO_EDGE_HORIZON_MINUTES", 1440, minimum=1)
POTENTIAL_MIN_TRADES = read.integer("POTENTIAL_MIN_TRADES", 100, minimum=0)
POTENTIAL_MIN_REALIZED_PNL = read.number("POTENTIAL_MIN_REALIZED_PNL", 0.0)
COMPUTE_BATCH_SIZE = read.integer("COMPUTE_BATCH_SIZE", 500, minimum=1)
COMPUTE_DRAIN_BUDGET_SECONDS = read.integer("COMPUTE_DRAIN_BUDGET_SECONDS", 50, minimum=1)
# Batches a drain keeps in flight, each on its own thread and database connection (see
# marts.services.changed_wallets_drain); 1 = strictly one batch after another.
COMPUTE_DRAIN_LANES = read.integer("COMPUTE_DRAIN_LANES", 2, minimum=1)
COMPUTE_SLIDE_INTERVAL_SECONDS = read.integer("COMPUTE_SLIDE_INTERVAL_SECONDS", 300, minimum=1)
COMPUTE_RECONCILE_MARGIN_SECONDS = read.integer("COMPUTE_RECONCILE_MARGIN_SECONDS", 600, minimum=0)
COMPUTE_RECONCILE_FIRST_LOOKBACK_SECONDS = read.integer("COMPUTE_RECONCILE_FIRST_LOOKBACK_SECONDS", 86400, minimum=0)
ANOMALY_LOOKBACK_HOURS = read.integer("ANOMALY_LOOKBACK_HOURS", 24, minimum=1)
ANOMALY_COOLDOWN_SECONDS = read.integer("ANOMALY_COOLDOWN_SECONDS", 6 * 3600, minimum=0)
ANOMALY_LARGE_TRADE_MIN_USDC = read.number("ANOMALY_LARGE_TRADE_MIN_USDC", 1000)
ANOMALY_LARGE_TRADE_FACTOR = read.number("ANOMALY_LARGE_TRADE_FACTOR", 5)
ANOMALY_LIQUIDITY_SHARE = read.number("ANOMALY_LIQUIDITY_SHARE", 0.02)
ANOMALY_SPIKE_MIN_TRADES = read.integer("ANOMALY_SPIKE_MIN_TRADES", 20, minimum=1)
ANOMALY_SPIKE_FACTOR = read.number("ANOMALY_SPIKE_FACTOR", 5)
ANOMALY_PNL_JUMP_MIN_USDC = read.number("ANOMALY_PNL_JUMP_MIN_USDC", 1000)
ANOMALY_FRESH_WALLET_MIN_USDC = read.number("ANOMALY_FRESH_WALLET_MIN_USDC", 5000)
ANOMALY_PRE_EVENT_MINUTES = read.number("ANOMALY_PRE_EVENT_MINUTES", 60)
ANOMALY_PRE_EVENT_MIN_USDC = read.number("ANOMALY_PRE_EVENT_MIN_USDC", 500)
# Anomalies fire only on facts that are news when they arrive: a fill stored within this many
# seconds of its trade time (backfills and history fetches update marts, never alert).
ANOMALY_LIVE_WINDOW_SECONDS = read.integer("ANOMALY_LIVE_WINDOW_SECONDS", 1800, minimum=0)
# Information edge (scoring.edge): decisions, the window before news, and the labelling minimums.
EDGE_DECISION_WINDOW_SECONDS = read.integer("EDGE_DECISION_WINDOW_SECONDS", 300, minimum=1)
EDGE_WINDOW_MINUTES = read.integer("EDGE_WINDOW_MINUTES", 60, minimum=1)
EDGE_MIN_DECISIONS = read.integer("EDGE_MIN_DECISIONS", 8, minimum=1)
EDGE_MIN_MARKETS = read.integer("EDGE_MIN_MARKETS", 3, minimum=1)
EDGE_MIN_EFFECT = read.number("EDGE_MIN_EFFECT", 0.2)
EDGE_BASELINE_DAYS = read.integer("EDGE_BASELINE_DAYS", 90, minimum=1)
EDGE_BASELINE_TTL_SECONDS = read.integer("EDGE_BASELINE_TTL_SECONDS", 900, minimum=0)
# The seal job stores each market's baseline counts per ended UTC day (scoring.baselines), so a
# baseline reads the fills of its unsealed days only. A pass starts no new day after its time
# budget: it shares the compute worker's slots with the drain, and a first run has 90 days to seal
# (at 10M fills, 2.6 s a day on 2 cores).
EDGE_SEAL_INTERVAL_SECONDS = read.integer("EDGE_SEAL_INTERVAL_SECONDS", 600, minimum=1)
EDGE_SEAL_TIME_BUDGET_SECONDS = read.integer("EDGE_SEAL_TIME_BUDGET_SECONDS", 120, minimum=1)
EDGE_FDR_INTERVAL_SECONDS = read.integer("EDGE_FDR_INTERVAL_SECONDS", 300, minimum=1)
# Hysteresis: a new strategy label, tier or risk level must hold this long before it replaces the old.
SCORING_HOLD_SECONDS = read.integer("SCORING_HOLD_SECONDS", 7200, minimum=0)
# ...or at once when it wins by this relative margin on the thresholds of its rule (scoring.formulas).
SCORING_LABEL_MARGIN = read.number("SCORING_LABEL_MARGIN", 0.5, minimum=0)
# ...except a label from the edge's FDR control (event_trader), which never settles by margin: it
# settles once it has held this long — by default two FDR passes, so a pass over the population
# has confirmed it after the wallet's last change (scoring.services.EDGE_STRATEGIES).
SCORING_EDGE_HOLD_SECONDS = read.integer("SCORING_EDGE_HOLD_SECONDS", 2 * EDGE_FDR_INTERVAL_SECONDS, minimum=0)
SIGNALS_FOLLOW_INTERVAL_SECONDS = read.integer("SIGNALS_FOLLOW_INTERVAL_SECONDS", 300, minimum=1)
# AI reports: an OpenAI-compatible endpoint when both are set, else the honest template writer.
AI_API_URL = read.string("AI_API_URL", "")
AI_API_KEY = read.string("AI_API_KEY", "")
AI_MODEL = read.string("AI_MODEL", "gpt-4o-mini")
AI_TIMEOUT_SECONDS = read.number("AI_TIMEOUT_SECONDS", 30.0, positive=True)
AI_MIN_TRADES = read.integer("AI_MIN_TRADES", 10, minimum=0)
AI_CACHE_SECONDS = read.integer("AI_CACHE_SECONDS", 86400, minimum=0)
AI_BATCH_SIZE = read.integer("AI_BATCH_SIZE", 20, minimum=1)
AI_BATCH_SPACING_SECONDS = read.number("AI_BATCH_SPACING_SECONDS", 2.0, minimum=0)
# Every 10 minutes, as the original did: the home page's "Featured Star Wallets" fills soon after start.
AI_BATCH_INTERVAL_SECONDS = read.integer("AI_BATCH_INTERVAL_SECONDS", 600, minimum=1)

# --- DRF ---------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    # Per client address (see api.throttling and the API_RATE_* settings), in Redis so every web
    # process shares the buckets. Health probes are plain Django views and never throttled.
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ClientRateThrottle"],
    "EXCEPTION_HANDLER": "api.exceptions.api_exception_handler",
    # OPTIONS answers 200 with the envelope and the Allow header (CORS preflights are
    # answered by corsheaders before they reach a view).
    "DEFAULT_METADATA_CLASS": "api.metadata.AllowedMethodsMetadata",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Arbitra API",
    "DESCRIPTION": (
        "Polymarket wallet facts, scores and anomaly signals, served from mart tables.\n\n"
        "Every `/api/v1` response is the envelope `{data, error, code, trace_id, meta}`; `trace_id` equals the "
        "`X-Request-ID` response header. Lists are paged with `page` / `page_size` (invalid or ≤ 0 → defaults, "
        "`page_size` ≤ 200) and return `{items, pagination: {page, page_size, total}}`. Errors: 400 `bad_request`, "
        "403 `forbidden`, 404 `not_found`, 405 `method_not_allowed`, 429 `rate_limited`, 500 `internal_error`. "
        "Scores are probabilistic estimates, not investment advice."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's assets ship with the project: the docs page works without internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "PoolTierEnum": "scoring.models.PoolTier",
        "StrategyTypeEnum": "scoring.models.StrategyType",
        "InfoEdgeLevelEnum": "scoring.models.InfoEdgeLevel",
        "RiskLevelEnum": "scoring.models.RiskLevel",
        "MomentumEnum": "scoring.models.Momentum",
        "SeverityEnum": "scoring.models.Severity",
        "AlertTypeEnum": "scoring.models.AlertType",
        "FeedEventTypeEnum": "scoring.models.FeedEventType",
        "RunStatusEnum": "ingest.models.RunStatus",
        "RunKindEnum": "ingest.models.RunKind",
        "MarketStatusEnum": "api.params.MARKET_STATUSES",
    },
    "TAGS": [
        {"name": "wallets", "description": "Wallet lists, profiles and cards"},
        {"name": "watchlist", "description": "Anonymous watchlist (identity: X-User-Fingerprint)"},
        {"name": "scores", "description": "Leaderboard, highlights and totals"},
        {"name": "markets", "description": "Markets"},
        {"name": "anomalies", "description": "Anomaly alerts"},
        {"name": "portfolios", "description": "Curated wallet packs"},
        {"name": "ai", "description": "AI reports"},
        {"name": "ingest", "description": "Ingest health"},
    ],
}

CORS_ALLOWED_ORIGINS = read.csv("CORS_ALLOWED_ORIGINS", "http://localhost:3000,http://127.0.0.1:3000")
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "origin",
    "x-csrftoken",
    "x-requested-with",
    "x-user-fingerprint",
    "x-request-id",
)
CORS_EXPOSE_HEADERS = ("x-request-id", "retry-after")
CORS_URLS_REGEX = r"^/api/.*$"
# The watchlist identity may come as the `user_fingerprint` cookie, which a browser sends
# cross-origin only with credentials allowed (origins stay an explicit list).
CORS_ALLOW_CREDENTIALS = read.boolean("CORS_ALLOW_CREDENTIALS", True)

if PRODUCTION:
    SESSION_COOKIE_SECURE = read.boolean("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = read.boolean("CSRF_COOKIE_SECURE", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = read.boolean("SECURE_SSL_REDIRECT", True)
    # Probes and scrapers talk plain HTTP to the container itself.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = read.integer("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = read.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = read.boolean("SECURE_HSTS_PRELOAD", True)

# --- API -----------------------------------------------------------------------------------------
# Totals of large lists (a million snapshots) are cached this long in Redis; 0 counts every time.
API_COUNT_CACHE_SECONDS = read.integer("API_COUNT_CACHE_SECONDS", 30, minimum=0)
# The homepage totals aggregate every snapshot: computed at most once per this many seconds. Short,
# so the numbers never look frozen; each answer carries `as_of`, the moment it was computed.
API_STATS_CACHE_SECONDS = read.integer("API_STATS_CACHE_SECONDS", 5, minimum=0)

# Request limits: bodies over API_MAX_BODY_BYTES are a 413 before they are read; more query
# parameters or form fields than API_MAX_FIELDS a 400; JSON nested deeper than API_MAX_JSON_DEPTH
# a 400; pages reaching past API_MAX_PAGING_DEPTH rows a 400 (narrow the list or sort it instead).
API_MAX_BODY_BYTES = read.integer("API_MAX_BODY_BYTES", 64 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
DATA_UPLOAD_MAX_NUMBER_FIELDS = read.integer("API_MAX_FIELDS", 1000, minimum=10)
API_MAX_JSON_DEPTH = read.integer("API_MAX_JSON_DEPTH", 20, minimum=2)
API_MAX_PAGING_DEPTH = read.integer("API_MAX_PAGING_DEPTH", 10_000, minimum=200)

# Rate limits per client address (api.throttling): a token bucket refilled at API_RATE_PER_SECOND
# holding API_RATE_BURST; API_RATE_PER_HOUR adds an hourly cap (0 = none, as the original had).
API_RATE_PER_SECOND = read.number("API_RATE_PER_SECOND", 30.0, positive=True)
API_RATE_BURST = read.integer("API_RATE_BURST", 60, minimum=1)
API_RATE_PER_HOUR = read.integer("API_RATE_PER_HOUR", 0, minimum=0)
# Service clients (the frontend's server-side renderer), by token (X-Service-Token header or
# "Authorization: Bearer …") or by address, have their own bucket and may pass the visitor's
# address in X-Forwarded-For. TRUSTED_PROXIES (addresses or networks) are the proxies whose
# X-Forwarded-For is believed; put a renderer that sits behind a proxy there too.
API_SERVICE_TOKENS = read.csv("API_SERVICE_TOKENS", "")
API_SERVICE_ADDRESSES = read.csv("API_SERVICE_ADDRESSES", "")
TRUSTED_PROXIES = read.csv("TRUSTED_PROXIES", "")
API_SERVICE_RATE_PER_SECOND = read.number("API_SERVICE_RATE_PER_SECOND", 300.0, positive=True)
API_SERVICE_RATE_BURST = read.integer("API_SERVICE_RATE_BURST", 600, minimum=1)


def _networks_checked(name: str, entries: list[str]) -> list[str]:
    import ipaddress

    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigurationError(name, entry, "addresses or networks, comma-separated (10.0.0.0/8,::1)") from None
    return entries


_networks_checked("API_SERVICE_ADDRESSES", API_SERVICE_ADDRESSES)
_networks_checked("TRUSTED_PROXIES", TRUSTED_PROXIES)
if any(len(token) < 16 for token in API_SERVICE_TOKENS):
    raise ConfigurationError("API_SERVICE_TOKENS", "(a token)", "tokens of at least 16 characters")

# State changes anonymous browsers may make. Acknowledging an alert: `anyone` (recorded with who
# and when) or `staff`; each client may acknowledge API_ACK_PER_MINUTE alerts a minute.
ANOMALY_ACK_POLICY = read.string("ANOMALY_ACK_POLICY", "anyone").lower()
if ANOMALY_ACK_POLICY not in {"anyone", "staff"}:
    raise ConfigurationError("ANOMALY_ACK_POLICY", ANOMALY_ACK_POLICY, "anyone or staff")
API_ACK_PER_MINUTE = read.integer("API_ACK_PER_MINUTE", 10, minimum=1)
# `force=true` on an AI report writes at most one new report per wallet per
# AI_FORCE_WALLET_INTERVAL_SECONDS and AI_FORCE_PER_CLIENT_PER_HOUR per client; beyond that the
# cached report is returned with the reason. Staff are not bounded.
AI_FORCE_WALLET_INTERVAL_SECONDS = read.integer("AI_FORCE_WALLET_INTERVAL_SECONDS", 600, minimum=0)
AI_FORCE_PER_CLIENT_PER_HOUR = read.integer("AI_FORCE_PER_CLIENT_PER_HOUR", 6, minimum=0)
