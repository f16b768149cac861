"""Ingest reads for operators: per-stream health, recent runs, open gaps and dead letters.

Every query here is bounded by an index (job name + started_at, open-row partial indexes); none
scans the fill or landing tables.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from ingest.changes import changed_wallets_depth
from ingest.models import IngestCursor, IngestDeadLetter, IngestGap, IngestRun, RunStatus
from ingest.registry import INGEST_JOBS


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
    open_letters = {
        (source, stream): n
        for source, stream, n in IngestDeadLetter.objects.filter(resolved_at__isnull=True)
        .values_list("source", "stream")
        .annotate(n=Count("id"))
        .values_list("source", "stream", "n")
    }
    open_gaps = {
        (source, stream): n
        for source, stream, n in IngestGap.objects.filter(status=IngestGap.Status.OPEN)
        .values_list("source", "stream")
        .annotate(n=Count("id"))
        .values_list("source", "stream", "n")
    }
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
            )
        )
    return rows


def _dead_letters_for(source: str, stream: str, open_letters: dict[tuple[str, str], int]) -> int:
    if source == "offchain":
        # Feed entries are dead-lettered per feed (source "feed:<id>").
        return sum(n for (letter_source, _), n in open_letters.items() if letter_source.startswith("feed:"))
    return open_letters.get((source, stream), 0)


def ingest_runs_list(*, job_name: str | None = None, status: str | None = None) -> QuerySet[IngestRun]:
    runs = IngestRun.objects.all().order_by("-started_at", "-id")
    if job_name:
        runs = runs.filter(Q(job_name=job_name) | Q(job_name=f"ingest.{job_name}"))
    if status:
        runs = runs.filter(status=status)
    return runs


def ingest_overview() -> dict:
    """Totals for the health page header and the metrics endpoint."""
    return {
        "dead_letters_open": IngestDeadLetter.objects.filter(resolved_at__isnull=True).count(),
        "gaps_open": IngestGap.objects.filter(status=IngestGap.Status.OPEN).count(),
        "changed_wallet_queue_depth": changed_wallets_depth(),
        "runs_running": IngestRun.objects.filter(status=RunStatus.RUNNING).count(),
    }
