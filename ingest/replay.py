"""Replay: re-run exactly a half-open time window through the same idempotent upserts.

Replay never touches live cursors, records a run of kind `replay`, and re-queues every wallet
with fills in the window so marts are recomputed from facts. Replaying a window that is already
complete inserts nothing and changes no aggregate. The targets come from the sources
(`ingest.registry.replay_targets`):

- trades (data_api), from the upstream: condition-scoped reads (the global feed cannot be
  windowed), walked back to the window start, only fills inside [since, until) written.
- trades, --from-landing: facts re-derived from the landed payloads (v1 and v2), no upstream.
- markets (gamma): from landing (payloads whose upstream update time is in the window) or a crawl.
- offchain (gamma): lifecycle events re-derived from the markets' own timestamps in the window.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import connection

from ingest.changes import changed_wallets_push
from ingest.frame import JobOutcome, JobRequest, job_run
from ingest.models import IngestRun, RunKind, RunStatus
from ingest.partitions import landing_removed_overlapping
from ingest.registry import replay_targets

Progress = Callable[[str], None]


def _wallets_in_window(since: datetime, until: datetime) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT wallet_id FROM trade_fill WHERE traded_at >= %s AND traded_at < %s", [since, until]
        )
        return [row[0] for row in cursor.fetchall()]


def replay_window(
    *,
    target: str,
    since: datetime,
    until: datetime,
    from_landing: bool = False,
    dry_run: bool = False,
    progress: Progress = lambda message: None,
) -> IngestRun:
    """Run a replay of [since, until) as a recorded run; never moves a live cursor."""
    if since >= until:
        raise ValueError("--since must be before --until")
    targets = replay_targets()
    if target not in targets:
        raise ValueError(f"unknown replay target {target!r}; known: {', '.join(sorted(targets))}")
    replay = targets[target]
    removed = landing_removed_overlapping(since=since, until=until) if from_landing and replay.landing_retained else []
    if removed:
        # Retention took landed pages holding trades of this window: a replay from the landing
        # would silently miss them, so it is refused with what was removed and what to do.
        months = ", ".join(f"{month.partition} ({month.records:,} records of trades "
                           f"{month.upstream_from:%Y-%m-%d %H:%M}–{month.upstream_until:%Y-%m-%d %H:%M} UTC, "
                           f"{month.action} {month.removed_at:%Y-%m-%d})" for month in removed)
        raise ValueError(
            f"the landing no longer holds every record of this window: retention (LANDING_RETENTION_DAYS="
            f"{settings.LANDING_RETENTION_DAYS}) removed {months}; replay it from the upstream (without --from-landing)"
        )

    def body(run: IngestRun) -> JobOutcome:
        total = replay.body(run, since=since, until=until, from_landing=from_landing, dry_run=dry_run,
                            progress=progress)
        requeued = 0
        if not dry_run and replay.requeues_wallets:
            wallet_ids = _wallets_in_window(since, until)
            changed_wallets_push(wallet_ids=wallet_ids)
            requeued = len(wallet_ids)
        return JobOutcome(
            status=RunStatus.SUCCEEDED,
            stats={**total.counts(), "dry_run": dry_run, "from_landing": from_landing, "wallets_requeued": requeued},
        )

    return job_run(
        JobRequest(job_name=f"replay.{target}", kind=RunKind.REPLAY, window_start=since, window_end=until), body
    )
