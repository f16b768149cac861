"""Replay: re-run exactly a half-open time window through the same idempotent upserts.

Replay never touches live cursors, records a run of kind `replay`, and re-queues every wallet
with fills in the window so marts are recomputed from facts. Replaying a window that is already
complete inserts nothing and changes no aggregate.

- trades, from the upstream: market-scoped reads (the global feed cannot be windowed), pages
  walked back to the window start, only fills inside [since, until) written.
- trades, --from-landing: facts re-derived from the landed payloads, no upstream needed.
- markets: from landing (payloads whose upstream update time is in the window) or a fresh crawl.
- offchain: lifecycle events re-derived from the markets' own timestamps in the window.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db import connection
from django.db.models import Q

from ingest.changes import changed_wallets_push
from ingest.clients import data_api_client, gamma_client
from ingest.jobs import JobOutcome, JobRequest, job_run
from ingest.models import IngestRun, LandingRecord, Market, RunKind, RunStatus
from ingest.services import MarketChange, PageResult, market_page_ingest, trade_page_ingest, trade_page_preview
from ingest.sources.data_api import jobs as data_api
from ingest.sources.feeds.jobs import offchain_events_upsert
from ingest.sources.gamma import jobs as gamma

Progress = Callable[[str], None]
LANDING_BATCH = 2000


def _wallets_in_window(since: datetime, until: datetime) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT wallet_id FROM trade_fill WHERE traded_at >= %s AND traded_at < %s", [since, until]
        )
        return [row[0] for row in cursor.fetchall()]


def _replay_trades_from_upstream(run, *, since, until, dry_run, progress: Progress) -> PageResult:
    client = data_api_client()
    try:
        sweep = data_api.markets_walk_back(
            client=client,
            run=run,
            condition_ids=data_api.markets_possibly_trading(since),
            since=since,
            window=(since, until),
            dry_run=dry_run,
            progress=progress,
        )
    finally:
        client.close()
    if sweep.error:
        raise RuntimeError(f"upstream failed during the replay: {sweep.error}")
    if sweep.unreachable:
        raise RuntimeError(f"{len(sweep.unreachable)} markets have more fills after the window start than the offset "
                           f"cap allows (e.g. {sweep.unreachable[0]}); use --from-landing")
    return sweep.result


def _replay_trades_from_landing(run, *, since, until, dry_run, progress: Progress) -> PageResult:
    total = PageResult()
    landed = LandingRecord.objects.filter(
        source="data_api", upstream_time__gte=since, upstream_time__lt=until
    ).order_by("id")
    count = landed.count()
    last_id = 0
    seen = 0
    while True:
        batch = list(landed.filter(id__gt=last_id).values_list("id", "payload")[:LANDING_BATCH])
        if not batch:
            break
        last_id = batch[-1][0]
        rows = [payload for _, payload in batch]
        if dry_run:
            page = trade_page_preview(rows=rows, window=(since, until))
        else:
            page = trade_page_ingest(run=run, rows=rows, window=(since, until), queue_changes=False)
        total.add(page)
        seen += len(batch)
        progress(f"landing records {seen}/{count}: {total.inserted} new, {total.duplicates} already stored")
    return total


def _replay_markets(run, *, since, until, from_landing, dry_run, progress: Progress) -> PageResult:
    total = PageResult()
    if from_landing:
        landed = LandingRecord.objects.filter(source="gamma", upstream_time__gte=since, upstream_time__lt=until)
        rows = list(landed.order_by("upstream_time", "id").values_list("payload", flat=True))
        pages = [rows[i : i + 500] for i in range(0, len(rows), 500)]
    else:
        client = gamma_client()
        try:
            pages = []
            for closed in ("false", "true"):
                for rows in gamma.keyset_pages(client=client, params={"closed": closed}):
                    pages.append(rows)
        finally:
            client.close()
    for number, rows in enumerate(pages, start=1):
        if dry_run:
            total.fetched += len(rows)
            continue
        page, _changes = market_page_ingest(run=run, rows=rows, stream="markets")
        total.add(page)
        progress(f"market pages {number}/{len(pages)}: {total.inserted} new, {total.enriched} updated")
    return total


def _replay_offchain(run, *, since, until, dry_run, progress: Progress) -> PageResult:
    markets = Market.objects.filter(
        Q(closed_time__gte=since, closed_time__lt=until) | Q(resolved_at__gte=since, resolved_at__lt=until)
    )
    changes = [
        MarketChange(m.pk, m.condition_id, m.closed, m.is_resolved, False) for m in markets.order_by("id")
    ]
    drafts = [d for d in gamma.lifecycle_events(changes) if since <= d.event_time < until]
    total = PageResult(fetched=len(drafts))
    if not dry_run:
        total.inserted = offchain_events_upsert(drafts=drafts, run=run)
        total.duplicates = len(drafts) - total.inserted
    progress(f"lifecycle events {len(drafts)}: {total.inserted} new")
    return total


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

    def body(run: IngestRun) -> JobOutcome:
        if target == "trades":
            replay = _replay_trades_from_landing if from_landing else _replay_trades_from_upstream
            total = replay(run, since=since, until=until, dry_run=dry_run, progress=progress)
        elif target == "markets":
            total = _replay_markets(run, since=since, until=until, from_landing=from_landing, dry_run=dry_run,
                                    progress=progress)
        elif target == "offchain":
            total = _replay_offchain(run, since=since, until=until, dry_run=dry_run, progress=progress)
        else:
            raise ValueError(f"unknown replay target {target!r}")
        requeued = 0
        if not dry_run and target == "trades":
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
