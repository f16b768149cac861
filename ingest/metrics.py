"""`/metrics`: ingest health in the Prometheus text exposition format, computed at scrape time.

Nothing is kept in process memory: web runs several gunicorn workers and the work happens in
Celery workers, so per-process counters would each see a fraction of the truth. Every value is read
from PostgreSQL and Redis through `ingest.selectors` (the same reads as the admin health page), with
bounded queries only: the run aggregate covers the last 24 hours through the started_at index, open
dead letters and gaps come from their open-row indexes, and Redis answers in one pipeline.

Series that count runs are windowed gauges (`…_24h`), not counters: they are recomputed from the
run table on every scrape and can go down, so `rate()` must not be applied to them.

The label naming a job is `ingest_job`, not `job`: Prometheus attaches its own `job` label to every
scraped series and would rename ours to `exported_job`.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

import redis
from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from arbitra.health import supervised_processes
from ingest.models import IngestGap, RunStatus
from ingest.registry import INGEST_JOBS
from ingest.selectors import (
    celery_queue_depths,
    fills_outside_partitions,
    ingest_dead_letters_open_counts,
    ingest_gaps_open_counts,
    ingest_overview,
    ingest_run_totals,
    ingest_stream_status,
    rows_outside_partitions,
    upstream_serving_status,
)

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WINDOW = timedelta(hours=24)
# A scrape that waits on a lock or a slow plan must fail fast rather than pile up behind itself.
STATEMENT_TIMEOUT_MS = 5000
REDIS_TIMEOUT_SECONDS = 2.0

_broker_clients: dict[str, redis.Redis] = {}


# --- exposition format ------------------------------------------------------------------------------


@dataclass
class MetricFamily:
    name: str
    kind: str  # gauge | counter
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((labels, value))


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _format_value(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def metrics_render(families: Iterable[MetricFamily]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            if labels:
                rendered = ",".join(f'{key}="{_escape_label_value(str(val))}"' for key, val in sorted(labels.items()))
                lines.append(f"{family.name}{{{rendered}}} {_format_value(value)}")
            else:
                lines.append(f"{family.name} {_format_value(value)}")
    return "\n".join(lines) + "\n"


# --- collection -----------------------------------------------------------------------------------


def _broker_client() -> redis.Redis:
    """The Celery broker may be another Redis (or database) than the app's: connect to it by its URL."""
    url = settings.CELERY_BROKER_URL
    client = _broker_clients.get(url)
    if client is None:
        client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        _broker_clients[url] = client
    return client


def _registered_job_names() -> list[str]:
    return [f"ingest.{name}" for name in INGEST_JOBS]


def _ingest_families(*, backend_up: MetricFamily) -> list[MetricFamily]:
    lag = MetricFamily(
        "arbitra_ingest_lag_seconds",
        "gauge",
        "Seconds between now and the newest upstream record time seen by the stream's last successful or partial run.",
    )
    last_success = MetricFamily(
        "arbitra_ingest_last_success_timestamp_seconds",
        "gauge",
        "Unix time at which the job's last succeeded run ended.",
    )
    for stream in ingest_stream_status():
        if stream.lag_seconds is not None:
            lag.add(stream.lag_seconds, ingest_job=stream.job_name)
        if stream.last_success_at is not None:
            last_success.add(stream.last_success_at.timestamp(), ingest_job=stream.job_name)

    runs = MetricFamily(
        "arbitra_ingest_runs_24h", "gauge", "Runs started in the last 24 hours, by job and final (or current) status."
    )
    inserted = MetricFamily(
        "arbitra_ingest_rows_inserted_24h", "gauge", "Rows newly stored by runs started in the last 24 hours."
    )
    duplicates = MetricFamily(
        "arbitra_ingest_rows_duplicates_24h",
        "gauge",
        "Rows already stored (page overlap, re-reads) seen by runs started in the last 24 hours.",
    )
    retries = MetricFamily(
        "arbitra_ingest_http_retries_24h",
        "gauge",
        "Upstream HTTP retries (transport errors, 408, 429, 5xx) made by runs started in the last 24 hours.",
    )
    # Registered jobs always report every status, zeros included: an alert on "no succeeded run in
    # 24h" needs a 0 sample, and a series that only appears once it is non-zero cannot be rated.
    by_job_status: dict[tuple[str, str], int] = {
        (job, status): 0 for job in _registered_job_names() for status in RunStatus.values
    }
    sums: dict[str, list[int]] = {job: [0, 0, 0] for job in _registered_job_names()}
    for totals in ingest_run_totals(since=timezone.now() - WINDOW):
        by_job_status[(totals.job_name, totals.status)] = totals.runs
        job_sums = sums.setdefault(totals.job_name, [0, 0, 0])
        job_sums[0] += totals.inserted
        job_sums[1] += totals.duplicates
        job_sums[2] += totals.http_retries
    for (job, status), count in sorted(by_job_status.items()):
        runs.add(count, ingest_job=job, status=status)
    for job, (job_inserted, job_duplicates, job_retries) in sorted(sums.items()):
        inserted.add(job_inserted, ingest_job=job)
        duplicates.add(job_duplicates, ingest_job=job)
        retries.add(job_retries, ingest_job=job)

    overview = ingest_overview()
    running = MetricFamily("arbitra_ingest_runs_running", "gauge", "Runs currently marked running.")
    running.add(overview["runs_running"])

    # Only (source, stream) pairs with open rows appear: dead letters are filed under the stream
    # that read the row (feed entries under "feed:<id>"), not under job names, so there is no
    # fixed list to fill with zeros. Alert on `sum(...) > 0`; graph with `or vector(0)`.
    letters = MetricFamily(
        "arbitra_ingest_dead_letters_open",
        "gauge",
        "Dead letters not yet resolved by a retry, by source and stream (present while non-zero).",
    )
    gaps = MetricFamily(
        "arbitra_ingest_gaps_open",
        "gauge",
        "Time windows the live feed could not cover and no backfill has closed yet (present while non-zero).",
    )
    for (source, stream), count in sorted(ingest_dead_letters_open_counts().items()):
        letters.add(count, source=source, stream=stream)
    for (source, stream), count in sorted(ingest_gaps_open_counts().items()):
        gaps.add(count, source=source, stream=stream)
    exhausted = MetricFamily(
        "arbitra_ingest_gaps_exhausted",
        "gauge",
        "Loss events: gaps whose backfill kept failing past INGEST_GAP_MAX_ATTEMPTS (not provably complete).",
    )
    exhausted.add(IngestGap.objects.filter(status=IngestGap.Status.EXHAUSTED).count())

    serving = MetricFamily(
        "arbitra_upstream_serving_lag_seconds",
        "gauge",
        "The Data API's own serving lag as /v2/status last reported it (absent until measured).",
    )
    serving_measured = MetricFamily(
        "arbitra_upstream_serving_lag_measured", "gauge", "1 when /v2/status reported a serving lag on its last poll."
    )
    upstream = upstream_serving_status()
    if upstream is not None:
        if upstream.lag_seconds is not None:
            serving.add(upstream.lag_seconds, worst=upstream.worst_mechanism)
        serving_measured.add(int(upstream.measured))

    queue = MetricFamily(
        "arbitra_changed_wallets_queue_depth", "gauge", "Wallets waiting in the changed-wallet queue for recompute."
    )
    depth = overview["changed_wallet_queue_depth"]
    if depth is not None:
        queue.add(depth)
    backend_up.add(int(depth is not None), backend="redis")
    outside = MetricFamily(
        "arbitra_fills_outside_partitions",
        "gauge",
        "Fills parked in trade_fill's default partition: their month has no partition yet (partitions_maintain "
        "moves them in; alert when non-zero for over an hour).",
    )
    outside.add(fills_outside_partitions())
    parked = MetricFamily(
        "arbitra_rows_outside_partitions",
        "gauge",
        "Rows parked in a monthly-partitioned table's default partition, per table (fills, landed pages, ledger "
        "entries): partitions_maintain moves them into their month within the hour.",
    )
    for table, rows in rows_outside_partitions().items():
        parked.add(rows, table=table)
    return [lag, last_success, runs, running, inserted, duplicates, retries, letters, gaps, exhausted, serving,
            serving_measured, queue, outside, parked]


# Families the layers above ingest contribute (marts: ledger reconciliation), registered from
# their AppConfig.ready: the metrics endpoint lives here, but ingest never imports those layers.
_family_providers: list[Callable[[], list[MetricFamily]]] = []


def metric_families_register(provider: Callable[[], list[MetricFamily]]) -> None:
    if provider not in _family_providers:
        _family_providers.append(provider)


def metrics_collect() -> list[MetricFamily]:
    """Every family, plus whether each Redis answered: a Redis outage shows as 0, not as a failed scrape.

    PostgreSQL is not optional: without it there is nothing to report, and the failed scrape
    (Prometheus' own `up` = 0) says so.
    """
    started = time.monotonic()
    backend_up = MetricFamily(
        "arbitra_metrics_backend_up", "gauge", "Whether a backend answered during this scrape (1) or not (0)."
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
        families = _ingest_families(backend_up=backend_up)
        for provider in _family_providers:
            families += provider()

    celery = MetricFamily("arbitra_celery_queue_depth", "gauge", "Celery messages waiting on the broker, by queue.")
    try:
        for name, depth in celery_queue_depths(client=_broker_client()).items():
            celery.add(depth, queue=name)
        backend_up.add(1, backend="broker")
    except redis.RedisError as exc:
        # Once per scrape while the outage lasts: the message, not a traceback every 15 seconds.
        logger.warning("metrics: Celery broker unreachable: %s", exc)
        backend_up.add(0, backend="broker")

    duration = MetricFamily(
        "arbitra_metrics_scrape_duration_seconds", "gauge", "Time this scrape took to collect every value."
    )
    duration.add(round(time.monotonic() - started, 6))
    return [*families, celery, backend_up, duration, *_supervised_families()]


def _supervised_families() -> list[MetricFamily]:
    """Restarts and liveness of the processes `manage.py up` supervises (empty without `up`)."""
    restarts = MetricFamily(
        "arbitra_process_restarts", "gauge", "Times `manage.py up` restarted each process since it started."
    )
    running = MetricFamily("arbitra_process_running", "gauge", "Whether each process `manage.py up` supervises runs (1).")
    for name, child in ((supervised_processes() or {}).get("children") or {}).items():
        restarts.add(child.get("restarts", 0), process=name)
        running.add(int(bool(child.get("running"))), process=name)
    return [restarts, running]


# --- access and view ------------------------------------------------------------------------------


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def metrics_access_allowed(request: HttpRequest) -> bool:
    """A staff session, or the bearer token; with no token configured, only loopback callers.

    Behind a reverse proxy on the same host every request comes from loopback: production sets
    METRICS_TOKEN, which turns the loopback allowance off.
    """
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return True
    token = getattr(settings, "METRICS_TOKEN", "") or ""
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    return _is_loopback(request.META.get("REMOTE_ADDR", ""))


@require_safe
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_access_allowed(request):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain; charset=utf-8")
    return HttpResponse(metrics_render(metrics_collect()), content_type=CONTENT_TYPE)


# Mounted by `path("metrics", include("ingest.metrics"))` in arbitra/urls.py.
urlpatterns = [path("", metrics_view, name="metrics")]
