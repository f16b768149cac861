"""Replay of Gamma markets (from landing or a fresh crawl) and of the lifecycle events their
timestamps imply, over a half-open window."""

from __future__ import annotations

from django.db.models import Q

from ingest.facts import offchain_events_upsert
from ingest.frame import PageResult
from ingest.models import LandingRecord, Market
from ingest.sources.base import Progress
from ingest.sources.gamma import jobs
from ingest.sources.gamma.client import gamma_client
from ingest.sources.gamma.writing import MarketChange, market_page_ingest


def markets_replay(run, *, since, until, from_landing, dry_run, progress: Progress) -> PageResult:
    return _replay_markets(run, since=since, until=until, from_landing=from_landing, dry_run=dry_run, progress=progress)


def lifecycle_replay(run, *, since, until, from_landing, dry_run, progress: Progress) -> PageResult:
    return _replay_offchain(run, since=since, until=until, dry_run=dry_run, progress=progress)


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
                for rows in jobs.keyset_pages(client=client, params={"closed": closed}):
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
    drafts = [d for d in jobs.lifecycle_events(changes) if since <= d.event_time < until]
    total = PageResult(fetched=len(drafts))
    if not dry_run:
        total.inserted = offchain_events_upsert(drafts=drafts, run=run)
        total.duplicates = len(drafts) - total.inserted
    progress(f"lifecycle events {len(drafts)}: {total.inserted} new")
    return total
