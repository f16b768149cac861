"""Gamma markets: full keyset crawl, open-market refresh, pending metadata and lifecycle events.

Gamma facts (ARCHITECTURE §7): `/markets` hides closed markets unless `closed=true`; deep offsets
are refused, so we page `/markets/keyset` with `after_cursor` and re-send every filter each page
(a `cursor` parameter is silently ignored and returns page 1 forever — hence the guard against a
cursor that does not advance). `outcomes`, `outcomePrices`, `clobTokenIds` are JSON strings,
which the parser decodes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from ingest.facts import EventDraft, market_resolved_event, offchain_events_upsert, wallets_queue_for_markets
from ingest.frame import JobOutcome, PageResult, cursor_advance, cursor_read
from ingest.http import SourceClient
from ingest.models import IngestRun, Market, OffchainEvent, RunStatus
from ingest.sources.gamma.writing import MarketChange, market_page_ingest

logger = logging.getLogger(__name__)

SOURCE = "gamma"
STREAM = "markets"
KEYSET_PAGE_SIZE = 500
CONDITION_ID_BATCH = 50
FULL_CRAWL_DONE = "full-crawl-done"


class CursorDidNotAdvance(RuntimeError):
    pass


def keyset_pages(
    *, client: SourceClient, params: dict, max_pages: int = 10_000, after: str | None = None,
    on_page: Callable[[str | None], None] | None = None,
) -> Iterator[list]:
    """Yield the `markets` of each keyset page; stop when no next cursor is given.

    `after` starts the crawl behind a cursor a previous crawl stored; `on_page(after)` is told the
    cursor each page was read with, once the caller has processed it, so a crawl can be resumed.
    """
    seen: set[str] = set()
    for _ in range(max_pages):
        page_params = {**params, "limit": KEYSET_PAGE_SIZE}
        if after:
            page_params["after_cursor"] = after
        body = client.get_json("/markets/keyset", params=page_params)
        if isinstance(body, dict):
            rows = body.get("markets") or body.get("data") or []
            after_next = body.get("next_cursor")
        else:
            rows, after_next = body, None
        yield rows
        if on_page is not None:
            on_page(after)
        if not after_next or not rows:
            return
        if after_next in seen:
            raise CursorDidNotAdvance(f"keyset cursor {after_next!r} repeated; stopping instead of looping")
        seen.add(after_next)
        after = after_next
    raise CursorDidNotAdvance(f"keyset crawl exceeded {max_pages} pages")


def lifecycle_events(changes: list[MarketChange]) -> list[EventDraft]:
    """Public moments of a market's life, from Gamma's own timestamps (not our fetch time)."""
    drafts: list[EventDraft] = []
    markets = Market.objects.in_bulk([change.market_id for change in changes])
    for change in changes:
        market = markets[change.market_id]
        if market.closed and market.closed_time:
            drafts.append(
                EventDraft(
                    source="gamma:lifecycle",
                    source_event_id=f"{market.condition_id}:closed",
                    kind=OffchainEvent.Kind.MARKET_LIFECYCLE,
                    event_time=market.closed_time,
                    title=f"Market closed: {market.question}",
                    payload={"condition_id": market.condition_id, "event": "closed"},
                    market_ids=[market.pk],
                )
            )
        if market.is_resolved and market.resolved_at:
            drafts.append(market_resolved_event(market))
    return drafts


def _ingest_rows(run: IngestRun, rows: list, total: PageResult, changes: list[MarketChange]) -> None:
    page, page_changes = market_page_ingest(run=run, rows=rows)
    total.add(page)
    changes += page_changes


def _fetch_by_condition_ids(*, client: SourceClient, run: IngestRun, condition_ids: list[str], total: PageResult,
                            changes: list[MarketChange]) -> set[str]:
    """Fetch specific markets, open or closed (Gamma hides closed ones unless asked)."""
    found: set[str] = set()
    for start in range(0, len(condition_ids), CONDITION_ID_BATCH):
        batch = condition_ids[start : start + CONDITION_ID_BATCH]
        for closed in ("false", "true"):
            rows = client.get_json("/markets", params={"condition_ids": batch, "closed": closed, "limit": len(batch)})
            if isinstance(rows, list) and rows:
                _ingest_rows(run, rows, total, changes)
                found |= {str(row.get("conditionId", "")).lower() for row in rows if isinstance(row, dict)}
    return found


def markets_sync(*, run: IngestRun, client: SourceClient) -> JobOutcome:
    """Open markets every run (prices, status); all closed markets once; then the stragglers."""
    cursor = cursor_read(source=SOURCE, stream=STREAM)
    total = PageResult()
    changes: list[MarketChange] = []
    pages = 0
    seen_open: set[str] = set()
    for rows in keyset_pages(client=client, params={"closed": "false"}):
        pages += 1
        _ingest_rows(run, rows, total, changes)
        seen_open |= {str(row.get("conditionId", "")).lower() for row in rows if isinstance(row, dict)}
    # Closed markets: the whole list once, then only what is new behind the stored keyset cursor
    # (the last page is read again, which costs one page and no writes). A market created and
    # closed between two open crawls has a newer id than every market seen, so it shows up
    # here: a gap sweep that relies on this crawl knows every market that could have traded.
    full_crawl = cursor.cursor_value != FULL_CRAWL_DONE
    closed_after = None if full_crawl else cursor.state.get("closed_after_cursor")
    last_closed_page: list[str | None] = [closed_after]
    for rows in keyset_pages(client=client, params={"closed": "true"}, after=closed_after,
                             on_page=lambda after: last_closed_page.__setitem__(0, after)):
        pages += 1
        _ingest_rows(run, rows, total, changes)
    cursor_advance(cursor=cursor, to=FULL_CRAWL_DONE, state={"closed_after_cursor": last_closed_page[0]})
    # Markets we hold as open that the open crawl no longer lists have closed (or resolved):
    # fetch them explicitly to learn how. Markets first seen in trades get their metadata here.
    stragglers = set(
        Market.objects.filter(closed=False).exclude(condition_id__in=seen_open).values_list("condition_id", flat=True)
    )
    pending = set(Market.objects.filter(metadata_status=Market.MetadataStatus.PENDING).values_list("condition_id", flat=True))
    wanted = sorted(stragglers | pending)
    found = _fetch_by_condition_ids(client=client, run=run, condition_ids=wanted, total=total, changes=changes)
    missing = sorted(pending - found)
    if missing:
        Market.objects.filter(condition_id__in=missing, metadata_status=Market.MetadataStatus.PENDING).update(
            metadata_status=Market.MetadataStatus.NOT_FOUND
        )
    events = offchain_events_upsert(drafts=lifecycle_events(changes), run=run)
    requeued = wallets_queue_for_markets(market_ids=sorted(total.resolved_market_ids))
    stats = {
        **total.counts(),
        "pages": pages,
        "full_crawl": full_crawl,
        "markets_resolved": len(total.resolved_market_ids),
        "lifecycle_events": events,
        "metadata_not_found": len(missing),
        "wallets_requeued_for_settlement": requeued,
        "http": client.stats,
    }
    return JobOutcome(status=RunStatus.SUCCEEDED, stats=stats)


def pending_markets_fetch(*, run: IngestRun, client: SourceClient) -> JobOutcome:
    """Metadata for markets first seen in trades, between full syncs (cheap: only pending ones)."""
    total = PageResult()
    changes: list[MarketChange] = []
    pending = sorted(
        Market.objects.filter(metadata_status=Market.MetadataStatus.PENDING).values_list("condition_id", flat=True)[:500]
    )
    found = _fetch_by_condition_ids(client=client, run=run, condition_ids=pending, total=total, changes=changes)
    missing = sorted(set(pending) - found)
    Market.objects.filter(condition_id__in=missing).update(metadata_status=Market.MetadataStatus.NOT_FOUND)
    events = offchain_events_upsert(drafts=lifecycle_events(changes), run=run)
    stats = {**total.counts(), "pending": len(pending), "not_found": len(missing), "lifecycle_events": events,
             "http": client.stats}
    return JobOutcome(status=RunStatus.SUCCEEDED, stats=stats)
