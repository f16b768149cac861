"""The shared frame every ingest job runs in: job lock, run record, failure handling.

Each job is a function `(run, context) -> JobOutcome`; this module does what all of them need, in
one place: take the job's PostgreSQL advisory lock (a second runner records `skipped_locked`),
mark runs a killed worker left `running` as `abandoned`, open the run row, close it with status,
stats and error, and turn an open circuit breaker into a `circuit_open` run.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.utils import timezone

from ingest.http import CircuitOpen
from ingest.models import IngestRun, RunKind, RunStatus

logger = logging.getLogger(__name__)

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
