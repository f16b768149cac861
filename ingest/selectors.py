"""Ingest reads for operators: per-stream health, recent runs, open gaps and dead letters.

Every query here is bounded by an index (job name + started_at, started_at, open-row partial
indexes) or reads catalogue statistics; none scans the fill or landing tables. The admin health
page and the metrics endpoint both read through these functions, so they always agree.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from ingest.changes import changed_wallets_depth
from ingest.frame import landing_page_records
from ingest.models import (
    TRADE_LANDING_SOURCE,
    TRADE_LANDING_STREAMS,
    IngestCursor,
    IngestDeadLetter,
    IngestGap,
    IngestRun,
    LandingPage,
    LandingRecord,
    RunStatus,
    TradeFill,
    Wallet,
)
from ingest.partitions import TRADE_FILL, default_partition_rows, partitioned_tables
from ingest.registry import INGEST_JOBS

logger = logging.getLogger(__name__)

# kombu's Redis transport keeps a queue's messages of priority p > 0 in "<queue>\x06\x16<p>", next
# to the plain key for priority 0; a queue's depth is the sum over its priority steps.
_KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
_KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)


@dataclass(frozen=True)
class StreamStatus:
    job_name: str
    source: str
    stream: str
    description: str
    cursor: str | None
    cursor_updated_at: datetime | None
    last_run_status: str | None
    last_run_at: datetime | None
    last_success_at: datetime | None
    lag_seconds: float | None
    newest_upstream_time: str | None
    dead_letters_open: int
    gaps_open: int
    # Wall-clock age of the newest fill stored (trades stream only): unlike the lag, which the last
    # successful run measured, it keeps growing when runs stop succeeding.
    newest_stored_time: datetime | None = None
    newest_stored_age_seconds: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _latest_run(job_name: str, *, statuses: list[str] | None = None) -> IngestRun | None:
    runs = IngestRun.objects.filter(job_name=job_name)
    if statuses:
        runs = runs.filter(status__in=statuses)
    return runs.order_by("-started_at").first()


def ingest_stream_status() -> list[StreamStatus]:
    """One row per ingest job: where its cursor is, how its last run went, how far behind it is."""
    cursors = {(c.source, c.stream): c for c in IngestCursor.objects.all()}
    open_letters = ingest_dead_letters_open_counts()
    open_gaps = ingest_gaps_open_counts()
    # Kept by the fill writer (ingest.sources.data_api.writing.newest_fill_record): no read of the
    # fill table at request time.
    newest = cursors.get(("data_api", "newest_fill"))
    newest_fill = datetime.fromisoformat(newest.cursor_value) if newest and newest.cursor_value else None
    rows = []
    for name, job in INGEST_JOBS.items():
        source, _, stream = name.partition(".")
        job_name = f"ingest.{name}"
        last = _latest_run(job_name)
        success = _latest_run(job_name, statuses=[RunStatus.SUCCEEDED])
        with_time = _latest_run(job_name, statuses=[RunStatus.SUCCEEDED, RunStatus.PARTIAL])
        newest = (with_time.stats_json or {}).get("newest_upstream_time") if with_time else None
        lag = None
        if newest:
            lag = round((timezone.now() - datetime.fromisoformat(newest)).total_seconds(), 1)
        cursor = cursors.get((source, stream))
        rows.append(
            StreamStatus(
                job_name=job_name,
                source=source,
                stream=stream,
                description=job.description,
                cursor=cursor.cursor_value if cursor and cursor.cursor_value else None,
                cursor_updated_at=cursor.updated_at if cursor else None,
                last_run_status=last.status if last else None,
                last_run_at=last.started_at if last else None,
                last_success_at=success.ended_at if success else None,
                lag_seconds=lag,
                newest_upstream_time=newest,
                dead_letters_open=_dead_letters_for(source, stream, open_letters),
                gaps_open=open_gaps.get((source, stream), 0),
                **_newest_stored(name, newest_fill),
            )
        )
    return rows


def _newest_stored(job: str, newest_fill: datetime | None) -> dict:
    if job != "data_api.trades" or newest_fill is None:
        return {}
    return {
        "newest_stored_time": newest_fill,
        "newest_stored_age_seconds": round((timezone.now() - newest_fill).total_seconds(), 1),
    }


# The demo emulator serves every row with icons on img.emulator.invalid (a reserved TLD no real
# upstream uses) and corrupts a few rows on purpose in one of three ways (scenario malformed_light).
_EMULATOR_ICON_PREFIX = "https://img.emulator.invalid/"


def dead_letters_injected_by_emulator() -> int:
    """Open dead letters that are rows the demo emulator corrupted on purpose, not ingest faults."""
    # v1 rows name the wallet proxyWallet, v2 rows proxy_wallet.
    no_wallet = ~Q(payload__has_key="proxyWallet") & ~Q(payload__has_key="proxy_wallet")
    corrupted = no_wallet | Q(payload__price="abc") | ~Q(payload__has_key="timestamp")
    return (
        IngestDeadLetter.objects.filter(resolved_at__isnull=True, payload__icon__startswith=_EMULATOR_ICON_PREFIX)
        .filter(corrupted)
        .count()
    )


@dataclass(frozen=True)
class UpstreamOutage:
    host: str
    cause: str
    detail: str
    jobs: list[str]
    since: datetime


_UPSTREAM_URL_SETTING = {"data_api": "POLYMARKET_DATA_API_URL", "gamma": "POLYMARKET_GAMMA_API_URL"}
_CAUSE_PATTERNS = [
    re.compile(r"\[Errno -?\d+\] ([^)'\"\]]+)"),
    re.compile(r"(Connection refused|Name or service not known|Temporary failure in name resolution)"),
    re.compile(r"((?:Read|Connect) timed out|timed out)"),
    re.compile(r"(HTTP \d{3})"),
    re.compile(r"(circuit breaker is open)"),
]


def _outage_cause(error_line: str) -> str:
    for pattern in _CAUSE_PATTERNS:
        found = pattern.search(error_line)
        if found:
            return found.group(1).strip()
    return error_line.split(": ", 2)[-1].strip() or "no answer"


def upstream_outages() -> list[UpstreamOutage]:
    """One entry per upstream host the latest run of a job could not reach (transport errors, 5xx
    through every retry, an open circuit), with the cause in a few words and the error in full."""
    by_host: dict[str, UpstreamOutage] = {}
    for name in INGEST_JOBS:
        setting = _UPSTREAM_URL_SETTING.get(name.partition(".")[0])
        last = _latest_run(f"ingest.{name}")
        if setting is None or last is None or last.status not in (RunStatus.FAILED, RunStatus.CIRCUIT_OPEN):
            continue
        first_line = (last.error_text or "").splitlines()[0] if last.error_text else ""
        if last.status == RunStatus.FAILED and not first_line.startswith("UpstreamUnavailable"):
            continue
        if last.status == RunStatus.CIRCUIT_OPEN:
            # The open breaker is the consequence; the run that failed before it names the cause.
            failed = (
                IngestRun.objects.filter(job_name=last.job_name, status=RunStatus.FAILED)
                .filter(error_text__startswith="UpstreamUnavailable")
                .order_by("-started_at")
                .first()
            )
            if failed is not None:
                first_line = f"{failed.error_text.splitlines()[0]} (circuit breaker now open: calls paused)"
        host = urlsplit(getattr(settings, setting)).hostname or getattr(settings, setting)
        known = by_host.get(host)
        if known is None:
            by_host[host] = UpstreamOutage(
                host=host, cause=_outage_cause(first_line), detail=first_line, jobs=[name], since=last.started_at
            )
        else:
            known.jobs.append(name)
    return list(by_host.values())


@dataclass(frozen=True)
class UpstreamServingStatus:
    """What the Data API last said of itself on `/v2/status` (polled by every live trades run)."""

    measured: bool
    lag_seconds: float | None
    worst_mechanism: str
    polled_at: datetime | None
    error: str


def upstream_serving_status() -> UpstreamServingStatus | None:
    """The upstream's own serving lag as last polled; None before the first live run."""
    cursor = IngestCursor.objects.filter(source="data_api", stream="status").first()
    if cursor is None or not cursor.state:
        return None
    state = cursor.state
    polled = state.get("polled_at")
    return UpstreamServingStatus(
        measured=bool(state.get("measured")) and state.get("lag_seconds") is not None,
        lag_seconds=state.get("lag_seconds"),
        worst_mechanism=state.get("worst_mechanism") or "",
        polled_at=datetime.fromisoformat(polled) if polled else None,
        error=(state.get("error") or "")[:300],
    )


def ingest_dead_letters_open_counts() -> dict[tuple[str, str], int]:
    """Open dead letters per (source, stream); reads the partial index of open rows only."""
    return {
        (source, stream): n
        for source, stream, n in IngestDeadLetter.objects.filter(resolved_at__isnull=True)
        .values_list("source", "stream")
        .annotate(n=Count("id"))
        .values_list("source", "stream", "n")
    }


def ingest_gaps_open_counts() -> dict[tuple[str, str], int]:
    return {
        (source, stream): n
        for source, stream, n in IngestGap.objects.filter(status=IngestGap.Status.OPEN)
        .values_list("source", "stream")
        .annotate(n=Count("id"))
        .values_list("source", "stream", "n")
    }


# Feed entries are dead-lettered per feed (source "feed:<id>"), not under the job's own name.
_FEED_DEAD_LETTER_PREFIX = "feed:"


def dead_letter_stream_lookup(*, source: str, stream: str) -> dict[str, str]:
    """The dead-letter filter (ORM lookups, also admin query parameters) for one job's stream."""
    if source == "offchain":
        return {"source__startswith": _FEED_DEAD_LETTER_PREFIX}
    return {"source": source, "stream": stream}


def _dead_letters_for(source: str, stream: str, open_letters: dict[tuple[str, str], int]) -> int:
    if source == "offchain":
        return sum(n for (letter_source, _), n in open_letters.items() if letter_source.startswith(_FEED_DEAD_LETTER_PREFIX))
    return open_letters.get((source, stream), 0)


def ingest_runs_list(*, job_name: str | None = None, status: str | None = None) -> QuerySet[IngestRun]:
    runs = IngestRun.objects.all().order_by("-started_at", "-id")
    if job_name:
        runs = runs.filter(Q(job_name=job_name) | Q(job_name=f"ingest.{job_name}"))
    if status:
        runs = runs.filter(status=status)
    return runs


def ingest_overview() -> dict:
    """Totals for the health page header and the metrics endpoint.

    `changed_wallet_queue_depth` is None when Redis cannot be reached: the page that tells an
    operator what is broken must still render when Redis is what is broken.
    """
    try:
        queue_depth: int | None = changed_wallets_depth()
    except redis.RedisError as exc:
        logger.warning("changed-wallet queue depth unavailable: %s", exc)
        queue_depth = None
    return {
        "dead_letters_open": IngestDeadLetter.objects.filter(resolved_at__isnull=True).count(),
        "gaps_open": IngestGap.objects.filter(status=IngestGap.Status.OPEN).count(),
        # Swept as far as the API allows but not provably complete: an operator should look.
        "gaps_exhausted": IngestGap.objects.filter(status=IngestGap.Status.EXHAUSTED).count(),
        "changed_wallet_queue_depth": queue_depth,
        "runs_running": IngestRun.objects.filter(status=RunStatus.RUNNING).count(),
    }


def fills_outside_partitions() -> int:
    """Fills whose month had no partition (parked in the default one; partitions_maintain moves
    them in within the hour). A read of the fact table: for the health page and /metrics, never
    for a serving endpoint."""
    return default_partition_rows(TRADE_FILL)


def rows_outside_partitions() -> dict[str, int]:
    """Per partitioned table, the rows parked in its default partition (maintenance moves them
    into their month within the hour; non-zero for longer means maintenance is not running)."""
    return {spec.table: default_partition_rows(spec) for spec in partitioned_tables()}


def ingest_gaps_open() -> QuerySet[IngestGap]:
    """Open gaps, oldest window first: the order the backfill job closes them in."""
    return (
        IngestGap.objects.filter(status=IngestGap.Status.OPEN)
        .select_related("found_by_run")
        .order_by("window_start", "id")
    )


def ingest_run_job_names(*, since: datetime) -> list[str]:
    """Every registered job plus any other job name (replays, retries) seen since `since`.

    Bounded by the started_at index: a DISTINCT over the whole run history would grow forever.
    """
    recent = IngestRun.objects.filter(started_at__gte=since).values_list("job_name", flat=True).distinct()
    return sorted({f"ingest.{name}" for name in INGEST_JOBS} | set(recent))


@dataclass(frozen=True)
class RunWindowTotals:
    job_name: str
    status: str
    runs: int
    inserted: int
    duplicates: int
    http_retries: int


def ingest_run_totals(*, since: datetime) -> list[RunWindowTotals]:
    """Run counts and summed row / retry counters per (job, status) for runs started since `since`.

    One aggregate over the started_at index range. Counters are summed only where the stats hold
    a JSON number: a failed run's stats carry no counters, and a malformed value must not break a
    metrics scrape.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT job_name, status, count(*),
                   coalesce(sum(CASE WHEN jsonb_typeof(stats_json -> 'inserted') = 'number'
                                     THEN (stats_json ->> 'inserted')::numeric END), 0),
                   coalesce(sum(CASE WHEN jsonb_typeof(stats_json -> 'duplicates') = 'number'
                                     THEN (stats_json ->> 'duplicates')::numeric END), 0),
                   coalesce(sum(CASE WHEN jsonb_typeof(stats_json -> 'http' -> 'retries') = 'number'
                                     THEN (stats_json -> 'http' ->> 'retries')::numeric END), 0)
            FROM ingest_run
            WHERE started_at >= %s
            GROUP BY job_name, status
            ORDER BY job_name, status
            """,
            [since],
        )
        return [
            RunWindowTotals(job_name, status, runs, int(inserted), int(duplicates), int(retries))
            for job_name, status, runs, inserted, duplicates, retries in cursor.fetchall()
        ]


def celery_queue_names() -> list[str]:
    """The queues the workers consume: the default queue and every routed one."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values() if "queue" in route}
    return sorted({settings.CELERY_TASK_DEFAULT_QUEUE, *routed})


def celery_queue_depths(*, client: redis.Redis) -> dict[str, int]:
    """Messages waiting per Celery queue on the broker (all priority steps), in one round trip."""
    names = celery_queue_names()
    pipeline = client.pipeline(transaction=False)
    for name in names:
        for step in _KOMBU_PRIORITY_STEPS:
            pipeline.llen(name if step == 0 else f"{name}{_KOMBU_PRIORITY_SEPARATOR}{step}")
    lengths = pipeline.execute()
    steps = len(_KOMBU_PRIORITY_STEPS)
    return {name: sum(lengths[i * steps : (i + 1) * steps]) for i, name in enumerate(names)}


def table_rows_estimate(*, table: str) -> int | None:
    """The planner's row estimate for a table and its partitions, or None if never analysed.

    Free (catalogue read) where count(*) on the fill or landing table would read every row.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT sum(c.reltuples) FILTER (WHERE c.reltuples >= 0), count(*) FILTER (WHERE c.reltuples >= 0)
            FROM pg_class c
            -- A partitioned table's own estimate is the sum of its partitions' (and autovacuum
            -- never refreshes it): the leaves alone count each row once.
            WHERE (c.oid = to_regclass(%s) AND c.relkind <> 'p')
               OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(%s))
            """,
            [table, table],
        )
        total, analysed = cursor.fetchone()
    if not analysed:
        return None
    return int(total)


# --- admin search over the large fact tables --------------------------------------------------------
# The stock admin search ORs an ILIKE per field, which reads every row of a table of tens of millions.
# These recognise what the operator pasted (an address, a transaction hash, a key) and turn it into
# one equality on an indexed column, so a search is an index probe whatever the table's size.

_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
_TX_HASH = re.compile(r"0x[0-9a-f]{64}")
_FILL_KEY = re.compile(r"[0-9]{10}-[0-9a-f]{53}")  # see parsers._fill_key_from_canonical


def trade_fills_matching(*, fills: QuerySet[TradeFill], term: str) -> QuerySet[TradeFill]:
    """Fills whose wallet address, transaction hash or idempotency key is `term` (exact)."""
    value = term.strip().lower()
    if _ADDRESS.fullmatch(value):
        return fills.filter(wallet_id__in=list(Wallet.objects.filter(address=value).values_list("id", flat=True)))
    if _TX_HASH.fullmatch(value):
        return fills.filter(transaction_hash=value)
    if _FILL_KEY.fullmatch(value):
        return fills.filter(idempotency_key=value)
    return fills.none()


def wallets_matching(*, wallets: QuerySet[Wallet], term: str) -> QuerySet[Wallet]:
    """An address matches exactly (unique index); anything else is a pseudonym or name fragment."""
    value = term.strip()
    if _ADDRESS.fullmatch(value.lower()):
        return wallets.filter(address=value.lower())
    return wallets.filter(Q(pseudonym__icontains=value) | Q(name__icontains=value))


def landing_streams() -> list[tuple[str, str]]:
    """The distinct (source, stream) pairs in landing, by a loose index scan: one probe per pair.

    A plain DISTINCT would read the whole landing table; this walks the (source, stream,
    upstream_time) index, which holds every record, jumping from each pair to the next.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE pairs AS (
                (SELECT source, stream FROM ingest_landing ORDER BY source, stream LIMIT 1)
                UNION ALL
                SELECT next.source, next.stream
                FROM pairs, LATERAL (
                    SELECT l.source, l.stream FROM ingest_landing l
                    WHERE (l.source, l.stream) > (pairs.source, pairs.stream)
                    ORDER BY l.source, l.stream LIMIT 1
                ) AS next
            )
            SELECT source, stream FROM pairs
            """
        )
        return [(source, stream) for source, stream in cursor.fetchall()]


def _trade_key_second(key: str) -> datetime | None:
    """The trade second a fill key starts with ("1796184630-…"), or None for any other key."""
    if len(key) > 11 and key[:10].isdigit() and key[10] == "-":
        return datetime.fromtimestamp(int(key[:10]), tz=UTC)
    return None


def landing_records_matching(*, records: QuerySet[LandingRecord], term: str) -> QuerySet[LandingRecord]:
    """Landing rows with this idempotency key (exact), in any stream.

    The key's index leads with (source, stream), so the search names every pair explicitly: the
    planner then probes the index once per stream instead of scanning the table.
    """
    value = term.strip()
    if not value:
        return records
    # A trade record's key starts with its trade's second: the upstream_time index finds it.
    moment = _trade_key_second(value)
    by_stream = Q()
    for source, stream in landing_streams():
        if source != TRADE_LANDING_SOURCE or stream not in TRADE_LANDING_STREAMS:
            by_stream |= Q(source=source, stream=stream, idempotency_key=value)
        elif moment is not None:
            by_stream |= Q(source=source, stream=stream, upstream_time__gte=moment,
                           upstream_time__lt=moment + timedelta(seconds=1), idempotency_key=value)
    return records.filter(by_stream) if by_stream else records.none()


def landing_pages_matching(*, pages: QuerySet[LandingPage], term: str) -> QuerySet[LandingPage]:
    """Landed pages holding the record of this idempotency key (exact).

    A trade key starts with its trade's second: the pages whose trade times span that second are
    found by index, then opened to see which of them holds the key.
    """
    value = term.strip()
    moment = _trade_key_second(value)
    if moment is None:
        return pages.none()
    candidates = pages.filter(upstream_from__lte=moment, upstream_until__gte=moment).values_list("id", "body")
    holding = [page_id for page_id, body in candidates if any(key == value for key, _ in landing_page_records(body))]
    return pages.filter(id__in=holding)


def landing_page_records_get(*, page_id: int) -> list[tuple[str, Any]]:
    """A landed page's records (idempotency key, record as received), in serving order."""
    return landing_page_records(LandingPage.objects.values_list("body", flat=True).get(pk=page_id))
