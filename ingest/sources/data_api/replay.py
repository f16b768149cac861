"""Replay of Data API fills over a half-open window: from the upstream or from the landing.

From the upstream: condition-scoped reads of every market that could have traded in the window
(the bare feed cannot be windowed and serves only two calendar months), walked back to the
window start; only fills inside [since, until) are written. From the landing: the stored records
re-derived — v2 records and the v1 records landed before Data API v1 was retired.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ingest.frame import PageResult, landing_page_records
from ingest.models import TRADE_LANDING_STREAMS, LandingPage, LandingRecord
from ingest.sources.base import Progress
from ingest.sources.data_api import jobs
from ingest.sources.data_api.client import data_api_client
from ingest.sources.data_api.parsing import NotATrade, ParsedFill, parse_trade, parse_trade_v2
from ingest.sources.data_api.writing import fills_preview, trade_fills_write
from ingest.sources.values import MalformedRow

LANDING_BATCH = 2000  # landed records a replay batch reads (legacy records)
LANDING_PAGES_PER_BATCH = 2  # landed pages a replay batch reads (up to 1,000 records each)


def trades_replay(run, *, since, until, from_landing, dry_run, progress: Progress) -> PageResult:
    replay = _replay_trades_from_landing if from_landing else _replay_trades_from_upstream
    return replay(run, since=since, until=until, dry_run=dry_run, progress=progress)


def _replay_trades_from_upstream(run, *, since, until, dry_run, progress: Progress) -> PageResult:
    client = data_api_client()
    sweep: dict = {"next_group": 0, "walk": None}
    try:
        total, _pages, error = jobs.conditions_walk_back(
            client=client,
            run=run,
            condition_ids=jobs.markets_possibly_trading(since, until),
            since=since,
            sweep=sweep,
            save_sweep=lambda state: sweep.update(state),
            window=(since, until),
            dry_run=dry_run,
            progress=progress,
            max_pages=10**9,  # a replay is an operator's explicit request: no per-run page budget
        )
    finally:
        client.close()
    if error:
        raise RuntimeError(f"upstream failed during the replay: {error}")
    return total


def landed_fill_parse(payload: Any) -> ParsedFill:
    """A landed trade record as the fill it was: v2 rows by their snake_case wallet key, v1 rows
    (stored before the v2 move) by the camelCase one."""
    if isinstance(payload, dict) and "proxy_wallet" in payload:
        return parse_trade_v2(payload)
    return parse_trade(payload)


def landed_trade_records(*, since, until) -> tuple[int, Iterator[list[tuple[str, Any]]]]:
    """The window's landed trade records as batches of (idempotency_key, payload), in landing
    order, with their count: records landed one by one before pages existed (LandingRecord),
    then landed pages (LandingPage) whose trade times reach into the window. Only what existed
    when the call was made is read: a replay's own landings are not read back."""
    records = LandingRecord.objects.filter(
        source=jobs.SOURCE, stream__in=TRADE_LANDING_STREAMS, upstream_time__gte=since, upstream_time__lt=until
    )
    last_record = records.order_by("-id").values_list("id", flat=True).first() or 0
    records = records.filter(id__lte=last_record).order_by("id")
    pages = LandingPage.objects.filter(
        source=jobs.SOURCE, stream__in=TRADE_LANDING_STREAMS, upstream_from__lt=until, upstream_until__gte=since
    )
    last_page = pages.order_by("-id").values_list("id", flat=True).first() or 0
    pages = pages.filter(id__lte=last_page).order_by("id")
    count = records.count() + sum(pages.values_list("record_count", flat=True))

    def batches() -> Iterator[list[tuple[str, Any]]]:
        last_id = 0
        while batch := list(records.filter(id__gt=last_id).values_list("id", "idempotency_key", "payload")[:LANDING_BATCH]):
            last_id = batch[-1][0]
            yield [(key, payload) for _, key, payload in batch]
        last_id = 0
        while batch := list(pages.filter(id__gt=last_id).values_list("id", "body")[:LANDING_PAGES_PER_BATCH]):
            last_id = batch[-1][0]
            yield [record for _, body in batch for record in landing_page_records(body)]

    return count, batches()


def _replay_trades_from_landing(run, *, since, until, dry_run, progress: Progress) -> PageResult:
    """Re-derive the window's fills from their landed records.

    A landing record carries the key its fill was stored under (the fill's identity with its
    occurrence), so the fill is rebuilt under exactly that key: a v2 record does not say which of
    two identical fills of a transaction it was, its key does. Records of one fill landed twice (a
    repair replay stored it again) are one fill. Records a page landed outside the window (a page
    spans the trade times of its records) are skipped.
    """
    total = PageResult()
    count, batches = landed_trade_records(since=since, until=until)
    keys_seen: set[str] = set()
    seen = 0
    for batch in batches:
        parsed: list[tuple[ParsedFill, Any]] = []
        rejects: list[tuple[Any, str]] = []
        skipped = 0
        for landed_key, payload in batch:
            if landed_key in keys_seen:
                skipped += 1
                continue
            keys_seen.add(landed_key)
            try:
                fill = _fill_under_key(landed_fill_parse(payload), landed_key)
            except NotATrade:
                skipped += 1
                continue
            except MalformedRow as exc:
                rejects.append((payload, str(exc)))
                continue
            if since <= fill.traded_at < until:
                parsed.append((fill, payload))
            else:
                skipped += 1
        if dry_run:
            page = fills_preview(fetched=len(batch), parsed=parsed, rejects=rejects, skipped=skipped)
        else:
            page = trade_fills_write(run=run, fetched=len(batch), parsed=parsed, rejects=rejects, skipped=skipped,
                                     queue_changes=False)
        total.add(page)
        seen += len(batch)
        progress(f"landing records {seen}/{count}: {total.inserted} new, {total.duplicates} already stored")
    return total


# Identical fills of one transaction: more than this many twins is not a fill, it is a fault.
_MOST_IDENTICAL_TWINS = 1000


def _fill_under_key(fill: ParsedFill, landed_key: str) -> ParsedFill:
    """The fill as the occurrence its landing key names (occurrence 0 for every v1 record)."""
    if fill.idempotency_key == landed_key:
        return fill
    for occurrence in range(1, _MOST_IDENTICAL_TWINS):
        twin = fill.with_occurrence(occurrence)
        if twin.idempotency_key == landed_key:
            return twin
    raise MalformedRow(f"landing key {landed_key} is not the key of this record's fill at any occurrence")
