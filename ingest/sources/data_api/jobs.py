"""Data API trades: the live feed, gap backfill and per-wallet history.

Facts about `/trades` that shape this code (ARCHITECTURE §7): newest first; offset pages with a
hard, moving offset cap (past it: HTTP 400 "max historical activity offset … exceeded"); `limit`
silently clamped; `start`/`end` honoured only with `user`; `takerOnly` defaults to true, so we
always ask for `takerOnly=false` to get maker fills too. New fills pushed in at the head while we
page shift older rows to higher offsets: we re-read some rows (absorbed by the idempotency key)
but never skip one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from ingest.frame import JobOutcome, PageResult, follow_up_enqueue
from ingest.http import (
    SourceClient,
    ThrottleTimeout,
    UpstreamBadPayload,
    UpstreamRejected,
    UpstreamUnavailable,
    is_offset_cap_error,
)
from ingest.models import IngestCursor, IngestGap, IngestRun, Market, RunStatus, Wallet
from ingest.sources.data_api.writing import trade_page_ingest, trade_page_preview

logger = logging.getLogger(__name__)

SOURCE = "data_api"
LIVE_STREAM = "trades"
HISTORY_STREAM = "wallet_history"
_TRANSIENT = (UpstreamUnavailable, ThrottleTimeout, UpstreamBadPayload)


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _from_unix(value: str | int) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


def _oldest_row_time(rows: list) -> datetime | None:
    stamps = [row.get("timestamp") for row in rows if isinstance(row, dict)]
    numbers = [int(stamp) for stamp in stamps if isinstance(stamp, int | float) and not isinstance(stamp, bool)]
    return _from_unix(min(numbers)) if numbers else None


@dataclass
class PagingOutcome:
    """How a newest-first offset walk ended."""

    result: PageResult = field(default_factory=PageResult)
    pages: int = 0
    reached: bool = False  # saw rows older than the floor, or the end of the feed
    stop_reason: str = ""  # offset_cap | page_cap | upstream_error
    error: str = ""
    first_page_newest: datetime | None = None
    floor: datetime | None = None


def trades_walk_back(
    *,
    client: SourceClient,
    run: IngestRun | None,
    params: dict,
    floor: datetime | None,
    stream: str,
    max_pages: int,
    offset_cap: int,
    floor_below_newest: timedelta | None = None,
    window: tuple[datetime, datetime] | None = None,
    dry_run: bool = False,
    on_page: Callable[[PagingOutcome], None] | None = None,
) -> PagingOutcome:
    """Page `/trades` newest first from offset 0 until rows older than `floor` (or the end) appear.

    `floor_below_newest` sets the floor relative to the newest row of the first page instead (a
    first poll without a cursor): upstream time, so our clock's skew cannot shift the window.
    Every page is landed and upserted as it arrives, so a run that stops early keeps its work.
    """
    outcome = PagingOutcome()
    limit = settings.INGEST_TRADES_PAGE_SIZE
    offset = 0
    while True:
        if outcome.pages >= max_pages:
            outcome.stop_reason = "page_cap"
            return outcome
        if offset > offset_cap:
            outcome.stop_reason = "offset_cap"
            return outcome
        try:
            rows = client.get_json("/trades", params={**params, "limit": limit, "offset": offset, "takerOnly": "false"})
        except UpstreamRejected as exc:
            if is_offset_cap_error(exc):
                outcome.stop_reason = "offset_cap"
                return outcome
            outcome.stop_reason, outcome.error = "upstream_error", str(exc)
            return outcome
        except _TRANSIENT as exc:
            outcome.stop_reason, outcome.error = "upstream_error", str(exc)
            return outcome
        if not isinstance(rows, list):
            outcome.stop_reason, outcome.error = "upstream_error", f"expected a JSON array, got {type(rows).__name__}"
            return outcome
        outcome.pages += 1
        if not rows:
            outcome.reached = True
            return outcome
        if dry_run:
            page = trade_page_preview(rows=rows, window=window)
        else:
            page = trade_page_ingest(run=run, rows=rows, stream=stream, window=window)
        if window is not None:
            # Rows outside the window were not written, but they tell how far back this page reaches.
            page.oldest_time = _oldest_row_time(rows) or page.oldest_time
        outcome.result.add(page)
        if on_page is not None:
            on_page(outcome)
        if outcome.first_page_newest is None:
            outcome.first_page_newest = page.newest_time
            if floor is None and floor_below_newest is not None and page.newest_time is not None:
                floor = page.newest_time - floor_below_newest
        outcome.floor = floor
        if floor is not None and page.oldest_time is not None and page.oldest_time < floor:
            outcome.reached = True
            return outcome
        # Advance by what came back, not by what we asked for: the upstream clamps `limit`.
        offset += len(rows)


def _stats(outcome: PagingOutcome, client: SourceClient, **extra) -> dict:
    newest = outcome.result.newest_time
    return {
        **outcome.result.counts(),
        "pages": outcome.pages,
        "stop_reason": outcome.stop_reason or "reached",
        "lag_seconds": round((timezone.now() - newest).total_seconds(), 3) if newest else None,
        "newest_upstream_time": newest.isoformat() if newest else None,
        "http": client.stats,
        **extra,
    }


def trades_live_ingest(*, run: IngestRun, client: SourceClient) -> JobOutcome:
    """One poll of the global feed: read back to the cursor (minus lookback), then move the cursor.

    The lookback re-reads a margin below the cursor for fills the upstream publishes late. If the
    offset cap stops us inside that margin, the run still reached the cursor: everything newer
    was read, and the margin was read by earlier polls. If the cap stops us before the cursor,
    the unread window becomes a gap for the backfill job and the cursor still moves: the gap
    row, not the cursor, now remembers it. An upstream failure leaves the cursor where it was;
    the next poll re-reads the window.
    """
    cursor, _ = IngestCursor.objects.get_or_create(source=SOURCE, stream=LIVE_STREAM)
    cursor_time = _from_unix(cursor.cursor_value) if cursor.cursor_value else None
    outcome = trades_walk_back(
        client=client,
        run=run,
        params={},
        floor=cursor_time - timedelta(seconds=settings.INGEST_TRADES_LOOKBACK_SECONDS) if cursor_time else None,
        floor_below_newest=None if cursor_time else timedelta(seconds=settings.INGEST_TRADES_INITIAL_SECONDS),
        stream=LIVE_STREAM,
        max_pages=settings.INGEST_MAX_PAGES_PER_RUN,
        offset_cap=settings.INGEST_TRADES_OFFSET_CAP,
    )
    floor = outcome.floor
    oldest = outcome.result.oldest_time
    capped = outcome.stop_reason in {"offset_cap", "page_cap"}
    # Strictly older than the cursor's second: that second itself may have grown since.
    reached_cursor = outcome.reached or (capped and cursor_time is not None and oldest is not None and oldest < cursor_time)
    gap = None
    if not reached_cursor and capped and oldest is not None and floor is not None:
        # [floor, oldest second we saw]: that second may be only partly read, so it is included.
        gap = IngestGap.objects.create(
            source=SOURCE,
            stream=LIVE_STREAM,
            window_start=floor,
            window_end=outcome.result.oldest_time + timedelta(seconds=1),
            found_by_run=run,
            detail={"reason": outcome.stop_reason, "pages": outcome.pages},
        )
        # Market-scoped reads must page through everything newer than the gap, so the sooner
        # the backfill runs the fewer rows stand in its way: start it now, not at its next tick.
        follow_up_enqueue(task_name="ingest.data_api.gaps")
    moved_to = None
    newest = outcome.first_page_newest
    if (reached_cursor or gap is not None) and newest is not None and (cursor_time is None or newest > cursor_time):
        moved_to = newest
        IngestCursor.objects.filter(pk=cursor.pk).update(cursor_value=str(_unix(newest)), updated_at=timezone.now())
    if reached_cursor:
        status = RunStatus.SUCCEEDED
    elif gap is not None:
        status = RunStatus.PARTIAL
    else:
        status = RunStatus.PARTIAL if outcome.pages else RunStatus.FAILED
    return JobOutcome(
        status=status,
        stats=_stats(
            outcome,
            client,
            gaps=1 if gap else 0,
            gap_id=gap.pk if gap else None,
            cursor_before=cursor.cursor_value or None,
            cursor_after=str(_unix(moved_to)) if moved_to else cursor.cursor_value or None,
            floor=floor.isoformat() if floor else None,
            lookback_complete=outcome.reached,
        ),
        error=outcome.error,
    )


@dataclass
class MarketSweep:
    result: PageResult = field(default_factory=PageResult)
    pages: int = 0
    unreachable: list[str] = field(default_factory=list)
    error: str = ""


def markets_walk_back(
    *,
    client: SourceClient,
    run: IngestRun | None,
    condition_ids: list[str],
    since: datetime,
    group_size: int = 20,
    window: tuple[datetime, datetime] | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> MarketSweep:
    """Read every fill of these markets back to `since` with market-scoped requests.

    Markets are read in groups (one request covers several); a group that hits the offset cap
    is split in halves, down to single markets. A single market that still cannot reach `since`
    is reported as unreachable — never silently dropped. Stops at the first upstream failure.
    """
    sweep = MarketSweep()
    pending = [condition_ids[i : i + group_size] for i in range(0, len(condition_ids), group_size)][::-1]
    finished = 0
    while pending:
        group = pending.pop()
        outcome = trades_walk_back(
            client=client,
            run=run,
            params={"market": ",".join(group)},
            floor=since,
            stream=LIVE_STREAM,
            max_pages=settings.INGEST_MAX_PAGES_PER_RUN,
            offset_cap=settings.INGEST_TRADES_OFFSET_CAP,
            window=window,
            dry_run=dry_run,
        )
        sweep.result.add(outcome.result)
        sweep.pages += outcome.pages
        if outcome.stop_reason == "upstream_error":
            sweep.error = outcome.error
            return sweep
        if outcome.reached:
            finished += len(group)
            if progress:
                progress(f"markets {finished}/{len(condition_ids)}: {sweep.result.inserted} new, "
                         f"{sweep.result.duplicates} already stored")
        elif len(group) > 1:
            half = len(group) // 2
            pending += [group[half:], group[:half]]
        else:
            sweep.unreachable += group
    return sweep


def markets_possibly_trading(since: datetime) -> list[str]:
    """Markets that could have traded after `since`: not closed before it."""
    return list(
        Market.objects.filter(Q(closed_time__isnull=True) | Q(closed_time__gte=since))
        .order_by("id")
        .values_list("condition_id", flat=True)
    )


def wallets_window_sweep(
    *, client: SourceClient, run: IngestRun | None, condition_ids: list[str], start: datetime, end: datetime
) -> MarketSweep:
    """Second resort for markets too busy to page back past `start`: user-scoped time windows
    (which the API honours) for every wallet known to trade those markets around the window.

    A wallet whose only fills in that market lie in the unread part is not known to us; the gap
    detail says the window was closed this way, so an operator can judge the residual risk.
    """
    sweep = MarketSweep()
    margin = timedelta(days=1)
    wallets = list(
        Wallet.objects.filter(
            fills__market__condition_id__in=condition_ids,
            fills__traded_at__gte=start - margin,
            fills__traded_at__lt=end + margin,
        )
        .distinct()
        .order_by("id")
        .values_list("address", flat=True)
    )
    for address in wallets:
        window_end = end
        while True:
            outcome = trades_walk_back(
                client=client,
                run=run,
                params={"user": address, "start": _unix(start), "end": _unix(window_end)},
                floor=start,
                stream=HISTORY_STREAM,
                max_pages=settings.INGEST_MAX_PAGES_PER_RUN,
                offset_cap=settings.INGEST_TRADES_OFFSET_CAP,
            )
            sweep.result.add(outcome.result)
            sweep.pages += outcome.pages
            if outcome.stop_reason == "upstream_error":
                sweep.error = outcome.error
                return sweep
            oldest = outcome.result.oldest_time
            if outcome.reached or oldest is None:
                break
            if oldest >= window_end:
                # More fills in one second than the offset cap: cannot narrow further.
                sweep.unreachable.append(address)
                break
            window_end = oldest  # inclusive: that second may continue below the cap
    return sweep


def trades_gap_backfill(*, run: IngestRun, client: SourceClient, max_sweeps: int = 3) -> JobOutcome:
    """Close open gaps with market-scoped reads, which the API answers where the global feed cannot.

    A sweep reads every candidate market from now back to the oldest open gap's start, so it
    covers every open gap recorded before it began: all of them close together. Markets too busy
    for the offset cap fall back to user-scoped windows. A gap that cannot be closed stays open
    (attempts counted, what was unreachable named in its detail) — never silently.
    """
    total = PageResult()
    pages = closed = exhausted = still_open = 0
    errors: list[str] = []
    open_gaps = IngestGap.objects.filter(source=SOURCE, stream=LIVE_STREAM, status=IngestGap.Status.OPEN)
    for _ in range(max_sweeps):
        oldest = open_gaps.order_by("window_start", "id").first()
        if oldest is None:
            break
        sweep_started = timezone.now()
        covered = list(open_gaps.filter(created_at__lte=sweep_started).order_by("id"))
        since = min(gap.window_start for gap in covered)
        until = max(gap.window_end for gap in covered)
        sweep = markets_walk_back(client=client, run=run, condition_ids=markets_possibly_trading(since), since=since)
        total.add(sweep.result)
        pages += sweep.pages
        busy_markets: list[str] = []
        if sweep.unreachable and not sweep.error:
            busy_markets = sweep.unreachable
            sweep = wallets_window_sweep(client=client, run=run, condition_ids=busy_markets, start=since, end=until)
            total.add(sweep.result)
            pages += sweep.pages
        covered_ids = [gap.pk for gap in covered]
        IngestGap.objects.filter(pk__in=covered_ids).update(attempts=F("attempts") + 1)
        if not sweep.error and not sweep.unreachable:
            status = IngestGap.Status.EXHAUSTED if busy_markets else IngestGap.Status.CLOSED
            for gap in covered:
                IngestGap.objects.filter(pk=gap.pk).update(
                    status=status,
                    closed_by_run=run,
                    closed_at=timezone.now(),
                    detail={
                        **gap.detail,
                        "closed_via": "market reads + user windows" if busy_markets else "market reads",
                        "busy_markets": busy_markets[:50],
                        "swept_since": since.isoformat(),
                    },
                )
            if busy_markets:
                exhausted += len(covered)
            else:
                closed += len(covered)
            continue
        still_open += len(covered)
        for gap in covered:
            detail = {**gap.detail, "unreachable": sweep.unreachable[:50], "last_error": sweep.error}
            IngestGap.objects.filter(pk=gap.pk).update(detail=detail)
        if sweep.error:
            errors.append(sweep.error)
        break
    stats = {
        **total.counts(),
        "pages": pages,
        "gaps_closed": closed,
        "gaps_exhausted": exhausted,
        "gaps_still_open": still_open,
        "http": client.stats,
    }
    if errors:
        return JobOutcome(status=RunStatus.PARTIAL, stats=stats, error=errors[-1])
    return JobOutcome(status=RunStatus.SUCCEEDED if not still_open else RunStatus.PARTIAL, stats=stats)


def wallet_history_backfill(*, run: IngestRun, client: SourceClient) -> JobOutcome:
    """Fetch the history of newly seen wallets through user-scoped `end` windows.

    Bounded per run and per wallet; the least recently attempted wallets go first, so a wallet
    with a long history advances a slice per run without starving the others.
    """
    wallets = list(
        Wallet.objects.filter(history_backfilled_at__isnull=True)
        .order_by(F("history_attempted_at").asc(nulls_first=True), "id")[: settings.INGEST_BACKFILL_WALLETS_PER_RUN]
    )
    total = PageResult()
    pages = completed = 0
    errors: list[str] = []
    for wallet in wallets:
        end = wallet.history_before
        wallet_pages = 0
        done = False
        while wallet_pages < settings.INGEST_WALLET_PAGES_PER_RUN:
            params = {"user": wallet.address}
            if end is not None:
                params["end"] = _unix(end)
            outcome = trades_walk_back(
                client=client,
                run=run,
                params=params,
                floor=None,
                stream=HISTORY_STREAM,
                max_pages=settings.INGEST_WALLET_PAGES_PER_RUN - wallet_pages,
                offset_cap=settings.INGEST_TRADES_OFFSET_CAP,
            )
            total.add(outcome.result)
            wallet_pages += outcome.pages
            if outcome.reached:
                done = True
                break
            if outcome.stop_reason == "upstream_error":
                errors.append(outcome.error)
                break
            oldest = outcome.result.oldest_time
            if outcome.stop_reason == "offset_cap" and oldest is not None and (end is None or oldest < end):
                # Move the window's end to the oldest second seen (inclusive: that second may
                # continue below the cap) and start again from offset 0.
                end = oldest
                continue
            break
        pages += wallet_pages
        updates = {"history_attempted_at": timezone.now(), "history_before": end}
        if done:
            updates["history_backfilled_at"] = timezone.now()
            completed += 1
        Wallet.objects.filter(pk=wallet.pk).update(**updates)
        if errors:
            break
    stats = {**total.counts(), "pages": pages, "wallets": len(wallets), "wallets_completed": completed, "http": client.stats}
    status = RunStatus.PARTIAL if errors else RunStatus.SUCCEEDED
    return JobOutcome(status=status, stats=stats, error=errors[-1] if errors else "")
