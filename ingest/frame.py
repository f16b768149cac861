"""The ingest frame: the steps of ARCHITECTURE §4 as named functions every source goes through.

    1. job_lock        PostgreSQL advisory lock per job; a second runner records `skipped_locked`
    2. job_run         the run row: opened, finished with status, stats and error, never raising
    3. (the source)    pages the upstream through its SourceClient (ingest.http)
    4. rows_split      each row validated; a bad one becomes a dead letter with its payload
    5. page_write      landing + facts in one transaction per page (deadlock victims run again);
                       changed wallets pushed to Redis only after the commit
    6. cursor_read / cursor_advance   the high-water mark and the upstream walk state; never backwards
    7. gap_record      a window the run could not prove complete, for a backfill job to close
    8. follow_up_enqueue   start another job after this transaction commits (by task name)

A source package (ingest/sources/<name>/) holds only its own logic: how to page its upstream,
parse its rows and write its facts. Everything every source needs is here, once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import orjson
import psycopg
import zstandard
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from ingest.changes import changed_wallets_push
from ingest.http import CircuitOpen
from ingest.models import IngestCursor, IngestDeadLetter, IngestGap, IngestRun, RunKind, RunStatus
from ingest.sources.values import MalformedRow

logger = logging.getLogger(__name__)
T = TypeVar("T")

# The upstream's trace id of the response a page came from (set by the source while it writes
# that page): dead letters quote it, so a bad row can be traced at Polymarket.
upstream_trace_id: ContextVar[str] = ContextVar("upstream_trace_id", default="")

# Advisory locks share one 64-bit key space per database; a fixed high word keeps ours apart
# from any other user of advisory locks.
_LOCK_NAMESPACE = 0x41524254  # "ARBT"


def job_lock_key(job_name: str) -> int:
    return (_LOCK_NAMESPACE << 32) | zlib.crc32(job_name.encode())


@contextlib.contextmanager
def job_lock(job_name: str) -> Iterator[bool]:
    """Session-level advisory lock held for the whole job (across its many page transactions).

    Yields whether the lock was obtained. If the worker dies, PostgreSQL drops the session and
    with it the lock, so a crash never leaves a job locked out.
    """
    key = job_lock_key(job_name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with contextlib.suppress(Exception), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


@dataclass
class JobOutcome:
    status: str = RunStatus.SUCCEEDED
    stats: dict = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class JobRequest:
    job_name: str
    kind: str = RunKind.SCHEDULED
    window_start: datetime | None = None
    window_end: datetime | None = None
    task_id: str = ""


def _abandon_stale_runs(job_name: str) -> int:
    """We hold the lock, so any run of this job still marked running belongs to a dead worker."""
    return IngestRun.objects.filter(job_name=job_name, status=RunStatus.RUNNING).update(
        status=RunStatus.ABANDONED, ended_at=timezone.now(), error_text="worker stopped before finishing the run"
    )


def job_run(request: JobRequest, body: Callable[[IngestRun], JobOutcome]) -> IngestRun:
    """Run one job under its lock and record it. Never raises for upstream or row problems."""
    with job_lock(request.job_name) as acquired:
        if not acquired:
            now = timezone.now()
            return IngestRun.objects.create(
                job_name=request.job_name,
                kind=request.kind,
                status=RunStatus.SKIPPED_LOCKED,
                started_at=now,
                ended_at=now,
                window_start=request.window_start,
                window_end=request.window_end,
                task_id=request.task_id,
                error_text="another runner holds the job lock",
            )
        abandoned = _abandon_stale_runs(request.job_name)
        run = IngestRun.objects.create(
            job_name=request.job_name,
            kind=request.kind,
            window_start=request.window_start,
            window_end=request.window_end,
            task_id=request.task_id,
        )
        try:
            outcome = body(run)
        except CircuitOpen as exc:
            run.finish(status=RunStatus.CIRCUIT_OPEN, stats={"abandoned_runs": abandoned}, error=str(exc))
            return run
        except Exception as exc:
            logger.exception("ingest job %s failed", request.job_name)
            run.finish(
                status=RunStatus.FAILED,
                stats={"abandoned_runs": abandoned},
                error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"[:20000],
            )
            return run
        stats = {**outcome.stats}
        if abandoned:
            stats["abandoned_runs"] = abandoned
        run.finish(status=outcome.status, stats=stats, error=outcome.error)
        return run


# --- pages ---------------------------------------------------------------------------------------


@dataclass
class PageResult:
    """What one page did; runs add these up into their stats."""

    fetched: int = 0
    inserted: int = 0
    duplicates: int = 0
    enriched: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    changed_wallet_ids: set[int] = field(default_factory=set)
    newest_time: datetime | None = None
    oldest_time: datetime | None = None
    changed_market_ids: set[int] = field(default_factory=set)
    resolved_market_ids: set[int] = field(default_factory=set)

    def add(self, other: PageResult) -> None:
        for name in ("fetched", "inserted", "duplicates", "enriched", "skipped", "dead_lettered"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.changed_wallet_ids |= other.changed_wallet_ids
        self.changed_market_ids |= other.changed_market_ids
        self.resolved_market_ids |= other.resolved_market_ids
        if other.newest_time and (self.newest_time is None or other.newest_time > self.newest_time):
            self.newest_time = other.newest_time
        if other.oldest_time and (self.oldest_time is None or other.oldest_time < self.oldest_time):
            self.oldest_time = other.oldest_time

    def counts(self) -> dict[str, int]:
        return {
            "fetched": self.fetched,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "enriched": self.enriched,
            "skipped": self.skipped,
            "dead_lettered": self.dead_lettered,
            "changed_wallets": len(self.changed_wallet_ids),
        }


def payload_key(payload: Any) -> str:
    """A content key for records without an upstream id: the same payload lands once."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def payload_text(payload: Any) -> str:
    """A decoded upstream record as compact JSON text, for the landing's verbatim `json` column.

    orjson: ~0.4 µs a trade row against ~4.4 µs for json.dumps, paid once per fill. It refuses
    what JSON text cannot hold as decoded here (integers beyond 64 bits, non-string keys from a
    caller): those few go through json.dumps.
    """
    try:
        return orjson.dumps(payload).decode()
    except orjson.JSONEncodeError:
        return json.dumps(payload, separators=(",", ":"))


@contextlib.contextmanager
def bulk_cursor():
    """A server-side-binding cursor on Django's connection (same transaction).

    Django's default client-side binding renders every array parameter as a quoted literal in
    Python, which cost ~70 % of a page's time; bound parameters go to PostgreSQL as they are.
    """
    connection.ensure_connection()
    cursor = psycopg.Cursor(connection.connection)
    try:
        yield cursor
    finally:
        cursor.close()



DEADLOCK_ATTEMPTS = 3


def _is_deadlock(exc: BaseException) -> bool:
    # Raw psycopg cursors raise psycopg's class; Django's cursors wrap it as the cause.
    return isinstance(exc, psycopg.errors.DeadlockDetected) or isinstance(exc.__cause__, psycopg.errors.DeadlockDetected)


def deadlock_retried(write: Callable[[], T]) -> T:
    """Run one page's transaction, again when PostgreSQL picked it as a deadlock victim.

    Jobs write shared rows in different orders — a trade page inserts a market, then locks fills
    it re-reads; the Gamma crawl locks one market's fills, then inserts the next market — and
    PostgreSQL breaks such a cycle by aborting one transaction (seen in the demo's first minute).
    A page's writes are idempotent, so the victim runs again once the other has committed instead
    of failing the whole run. Inside an outer transaction the abort is not ours to retry.
    """
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            return write()
        except (psycopg.Error, DatabaseError) as exc:
            if not _is_deadlock(exc) or attempt == DEADLOCK_ATTEMPTS or connection.in_atomic_block:
                raise
            logger.warning("page transaction chosen as a deadlock victim (attempt %d of %d); running it again",
                           attempt, DEADLOCK_ATTEMPTS)
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def dead_letters_write(
    *,
    run: IngestRun | None,
    source: str,
    stream: str,
    rejects: list[tuple[Any, str]],
    identity: Callable[[Any], str] = lambda row: payload_key(row),
) -> int:
    """Dead-letter rejected rows once: one open letter per row identity, whichever stream met it.

    `identity` names the row the way its source does (a fill by its identifying fields): the same
    bad fill served by the global feed and by a user-scoped read differs in sentinel fields
    (outcome_index 999, empty slugs) but is one row, so one letter. Content hash by default.
    """
    if not rejects:
        return 0
    trace_id = upstream_trace_id.get()
    suffix = f" [trace {trace_id}]" if trace_id else ""
    keyed = {identity(row): (row, error + suffix) for row, error in rejects}
    already_open = set(
        IngestDeadLetter.objects.filter(source=source, payload_key__in=list(keyed), resolved_at__isnull=True)
        .values_list("payload_key", flat=True)
    )
    IngestDeadLetter.objects.bulk_create(
        [
            IngestDeadLetter(source=source, stream=stream, payload=row, payload_key=key, error=error, run=run)
            for key, (row, error) in sorted(keyed.items())
            if key not in already_open
        ]
    )
    return len(keyed) - len(already_open)


def landing_write(
    cursor, *, run: IngestRun | None, source: str, stream: str, records: list[tuple[str, Any, datetime | None]]
) -> int:
    """records: (idempotency_key, payload as received, upstream time). Returns how many landed
    (a record already landed under its key lands nothing)."""
    if not records:
        return 0
    cursor.execute(
        """
        INSERT INTO ingest_landing (source, stream, idempotency_key, payload, upstream_time, received_at, run_id)
        SELECT %s, %s, k, p::json, t, now(), %s
        FROM unnest(%b::text[], %b::text[], %b::timestamptz[]) AS r(k, p, t)
        ON CONFLICT (source, stream, idempotency_key)
            WHERE NOT (source = 'data_api' AND stream IN ('trades', 'wallet_history')) DO NOTHING
        """,
        [
            source,
            stream,
            run.pk if run else None,
            [key for key, _, _ in records],
            [json.dumps(payload, separators=(",", ":")) for _, payload, _ in records],
            [moment for _, _, moment in records],
        ],
    )
    return max(cursor.rowcount, 0)


# Zstandard level 1: ~1.2 ms and 11x smaller for a 1,000-record page (830 kB of JSON), where zlib
# level 1 (the codec before) took ~5 ms for 6.5x and PostgreSQL's own pglz costs more than the
# records' rows did. The TOAST value is stored as is (the column's storage is EXTERNAL):
# compressing compressed bytes again gains nothing. Bodies landed with zlib stay readable: a
# Zstandard frame opens with its magic number, a zlib stream never does.
LANDING_PAGE_ZSTD_LEVEL = 1
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_codecs = threading.local()  # compressor contexts are not thread-safe: one per thread


def _landing_compress(document: bytes) -> bytes:
    compressor = getattr(_codecs, "compressor", None)
    if compressor is None:
        compressor = _codecs.compressor = zstandard.ZstdCompressor(level=LANDING_PAGE_ZSTD_LEVEL)
    return compressor.compress(document)


def _landing_decompress(body: bytes) -> bytes:
    if body[:4] != _ZSTD_MAGIC:
        return zlib.decompress(body)
    decompressor = getattr(_codecs, "decompressor", None)
    if decompressor is None:
        decompressor = _codecs.decompressor = zstandard.ZstdDecompressor()
    return decompressor.decompress(body)


def landing_page_body(records: Iterable[tuple[str, str, Any]]) -> bytes:
    """A landed page's body: its records (idempotency_key, payload as JSON text, …) as one
    `[[key, payload], …]` JSON document, compressed."""
    document = "[" + ",".join(f"[{orjson.dumps(key).decode()},{payload}]" for key, payload, _ in records) + "]"
    return _landing_compress(document.encode())


def landing_page_body_of(records: list[tuple[str, Any, Any]]) -> bytes:
    """landing_page_body of (idempotency_key, payload as decoded, …) records, the same bytes: the
    document in one orjson call (a quarter less than a call per record and a join), unless a
    payload holds what orjson refuses (see payload_text)."""
    try:
        document = orjson.dumps([[key, payload] for key, payload, _ in records])
    except orjson.JSONEncodeError:
        return landing_page_body((key, payload_text(payload), None) for key, payload, _ in records)
    return _landing_compress(document)


def landing_page_write(
    cursor, *, run: IngestRun | None, source: str, stream: str,
    records: list[tuple[str, str, datetime]] | None = None, body: bytes | None = None,
    times: list[datetime] | None = None,
) -> int:
    """Land records together as one LandingPage row: `records` — (idempotency_key, payload as
    received as JSON text, upstream time), in serving order — or the `body` a caller built of them
    already (landing_page_body or landing_page_body_of, off the writing thread, say) with their
    upstream `times`. Returns how many records landed."""
    if records is not None:
        if not records:
            return 0
        body, times = landing_page_body(records), [moment for _, _, moment in records]
    if body is None or times is None:
        raise TypeError("landing_page_write takes records, or a body with its records' times")
    if not times:
        return 0
    cursor.execute(
        """
        INSERT INTO ingest_landing_page (source, stream, record_count, upstream_from, upstream_until, received_at,
                                         run_id, body)
        VALUES (%s, %s, %s, %s, %s, now(), %s, %s)
        """,
        [source, stream, len(times), min(times), max(times), run.pk if run else None, body],
        prepare=True,
    )
    return len(times)


def landing_page_records(body: bytes | memoryview) -> list[tuple[str, Any]]:
    """A landed page's records: (idempotency_key, record as received), in serving order."""
    return [(key, payload) for key, payload in json.loads(_landing_decompress(bytes(body)))]


def rows_split(
    rows: Iterable[Any], *, parse: Callable[[dict], T], skip: tuple[type[BaseException], ...] = ()
) -> tuple[list[tuple[T, Any]], list[tuple[Any, str]], int]:
    """Step 4: (record, payload) pairs, rejects with their reason, and a count of skipped rows.

    `parse` raises MalformedRow for a row that cannot become a record (it becomes a dead letter)
    and one of `skip` for a valid row this stream does not store (counted, not dead-lettered).
    """
    parsed: list[tuple[T, Any]] = []
    rejects: list[tuple[Any, str]] = []
    skipped = 0
    for row in rows:
        if not isinstance(row, dict):
            rejects.append((row, f"row: expected an object, got {type(row).__name__}"))
            continue
        try:
            parsed.append((parse(row), row))
        except MalformedRow as exc:
            rejects.append((row, str(exc)))
        except skip:
            skipped += 1
    return parsed, rejects, skipped


def page_write(write: Callable[[], PageResult], *, queue_changes: bool = True) -> PageResult:
    """Step 5: one page's transaction (run again if chosen as a deadlock victim); after the commit,
    the wallets that got genuinely new facts go to the changed-wallet queue."""
    result = deadlock_retried(lambda: _atomic(write))
    if queue_changes and result.changed_wallet_ids:
        changed_wallets_push(wallet_ids=result.changed_wallet_ids)
    return result


def _atomic(write: Callable[[], T]) -> T:
    with transaction.atomic():
        return write()


# --- cursors, gaps, follow-ups ------------------------------------------------------------------


def cursor_read(*, source: str, stream: str) -> IngestCursor:
    """Step 6: the stream's cursor row (created empty on first use)."""
    cursor, _ = IngestCursor.objects.get_or_create(source=source, stream=stream)
    return cursor


def cursor_advance(*, cursor: IngestCursor, to: str | None = None, state: dict | None = None) -> None:
    """Step 6: move the high-water mark to `to` (a caller proves it was reached) and/or store the
    walk state. The mark is compared as a number when both sides are numbers, and never moves
    backwards: a slow, older run finishing after a newer one cannot undo it."""
    fields: dict[str, Any] = {"updated_at": timezone.now()}
    if to is not None and _mark_is_ahead(to, cursor.cursor_value):
        fields["cursor_value"] = to
    if state is not None:
        fields["state"] = state
    IngestCursor.objects.filter(pk=cursor.pk).update(**fields)
    for name, value in fields.items():
        setattr(cursor, name, value)


def _mark_is_ahead(new: str, old: str) -> bool:
    if not old:
        return True
    if new.isdigit() and old.isdigit():
        return int(new) > int(old)
    return new != old


def gap_record(
    *, source: str, stream: str, window_start: datetime, window_end: datetime, run: IngestRun | None, detail: dict
) -> IngestGap:
    """Step 7: a window this run could not prove complete, for the stream's backfill to close."""
    return IngestGap.objects.create(
        source=source, stream=stream, window_start=window_start, window_end=window_end, found_by_run=run, detail=detail
    )


def follow_up_enqueue(*, task_name: str, countdown: float = 1) -> None:
    """Step 8: start another job once the current transaction commits, by its task name (no import
    of the task modules, so sources never import upwards)."""
    from arbitra.celery import app

    def send() -> None:
        try:
            app.send_task(task_name, countdown=countdown)
        except Exception:  # a broker hiccup must not fail the run; beat runs the job anyway
            logger.warning("could not enqueue %s now; beat will run it", task_name, exc_info=True)

    transaction.on_commit(send)
