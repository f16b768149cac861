"""Replay of Data API fills over a half-open window: from the upstream or from the landing."""

from __future__ import annotations

from ingest.frame import PageResult
from ingest.models import LandingRecord
from ingest.sources.base import Progress
from ingest.sources.data_api import jobs
from ingest.sources.data_api.client import data_api_client
from ingest.sources.data_api.writing import trade_page_ingest, trade_page_preview

LANDING_BATCH = 2000


def trades_replay(run, *, since, until, from_landing, dry_run, progress: Progress) -> PageResult:
    replay = _replay_trades_from_landing if from_landing else _replay_trades_from_upstream
    return replay(run, since=since, until=until, dry_run=dry_run, progress=progress)


def _replay_trades_from_upstream(run, *, since, until, dry_run, progress: Progress) -> PageResult:
    client = data_api_client()
    try:
        sweep = jobs.markets_walk_back(
            client=client,
            run=run,
            condition_ids=jobs.markets_possibly_trading(since),
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
