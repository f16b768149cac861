"""Data API v2 trades: the live feed, its gaps, and the histories of new wallets.

Facts about `/v2/trades` that shape this code (ARCHITECTURE §7): newest first by (block time,
sequence); cursor paging that stays consistent while rows arrive (walk.py); `taker_only`
defaults to true, so we always send `taker_only=false` to get maker fills too; the bare feed
serves only the current and previous calendar month; `condition=` reads (≤ 20 ids) serve three
years; `start`/`end` are honoured only with `user=`. The upstream indexes the chain late — a
fill can become visible after newer ones were served — and says by how much in `/v2/status`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from ingest.frame import (
    JobOutcome,
    PageResult,
    cursor_advance,
    cursor_read,
    follow_up_enqueue,
    gap_record,
)
from ingest.http import SourceClient, UpstreamRejected
from ingest.models import IngestCursor, IngestGap, IngestRun, Market, RunStatus, Wallet
from ingest.sources.data_api.parsing import parse_upstream_status
from ingest.sources.data_api.walk import (
    TRANSIENT_ERRORS,
    WalkOutcome,
    WalkState,
    cursor_walk,
    from_unix,
    unix,
    wallet_stream_walk,
)
from ingest.sources.data_api.writing import trade_body_preparer, trade_page_v2_ingest, trade_page_v2_prepare
from ingest.sources.values import MalformedBody

logger = logging.getLogger(__name__)

SOURCE = "data_api"
LIVE_STREAM = "trades"
HISTORY_STREAM = "wallet_history"
STATUS_STREAM = "status"
GAPS_STREAM = "gaps"
TRADES_PATH = "/v2/trades"
STATUS_PATH = "/v2/status"
CONDITIONS_PER_REQUEST = 20
LIVE_FILTERS = {"taker_only": "false"}


# --- upstream serving lag -----------------------------------------------------------------------


def upstream_status_poll(*, client: SourceClient) -> dict:
    """Read `/v2/status` and keep it on the status cursor (health page, metrics).

    Returns what was measured: `lag_seconds` (the reported serving lag plus the snapshot's age;
    None when the upstream has not measured it yet, or could not be asked), `worst_mechanism`,
    `ingestion`, `error`.
    """
    measured: dict = {"polled_at": timezone.now().isoformat(), "lag_seconds": None}
    try:
        status = parse_upstream_status(client.get_json(STATUS_PATH))
    except (UpstreamRejected, *TRANSIENT_ERRORS, MalformedBody) as exc:
        # 503 "not measured yet" is retried and then surfaces as UpstreamUnavailable: the lag
        # stays unknown (None, never 0) and the overlap takes its ceiling.
        measured["error"] = str(exc)[:500]
    else:
        # A snapshot `age_seconds` old measured the lag as of then: rows can surface that much
        # older still, so the lag the overlap must cover is the two added.
        lag = None if status.lag_seconds is None else status.lag_seconds + (status.age_seconds or 0)
        measured.update(
            lag_seconds=float(lag) if lag is not None else None,
            snapshot_age_seconds=float(status.age_seconds) if status.age_seconds is not None else None,
            worst_mechanism=status.worst or "",
            ingestion=status.ingestion,
            measured=status.measured,
            # The upstream's own clock: the bare feed's month window is the upstream's, not ours.
            upstream_time=status.computed_at.isoformat() if status.computed_at else None,
        )
    cursor = cursor_read(source=SOURCE, stream=STATUS_STREAM)
    cursor_advance(cursor=cursor, state=measured)
    return measured


def overlap_from_lag(lag_seconds: float | None) -> tuple[int, str]:
    """(overlap seconds, where the lag came from): the serving lag clamped to the configured
    floor and ceiling, plus a margin. An unmeasured lag takes the ceiling: never guess low."""
    floor = settings.INGEST_SERVING_LAG_FLOOR_SECONDS
    ceiling = settings.INGEST_SERVING_LAG_CEILING_SECONDS
    if lag_seconds is None:
        return ceiling + settings.INGEST_OVERLAP_MARGIN_SECONDS, "ceiling (lag not measured)"
    clamped = min(max(lag_seconds, floor), ceiling)
    source = "status" if clamped == lag_seconds else ("floor" if lag_seconds < floor else "ceiling")
    return int(clamped + settings.INGEST_OVERLAP_MARGIN_SECONDS + 0.999), source


def bare_feed_horizon(now: datetime) -> datetime:
    """The oldest time the bare feed serves: the first instant of the previous calendar month."""
    first_of_month = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first_of_month - timedelta(days=1)).replace(day=1)


# --- live feed ----------------------------------------------------------------------------------


def trades_live_ingest(*, run: IngestRun, client: SourceClient) -> JobOutcome:
    """One pass of the global feed: walk from the head down to the high-water mark minus the
    overlap, then move the mark to the walk's head.

    1. Measure the serving lag (`/v2/status`); the overlap is that lag, clamped, plus a margin.
    2. Resume an unfinished walk from its stored cursor, or start one at the head whose floor is
       the mark minus the overlap (the first pass ever: the head minus INGEST_TRADES_INITIAL_SECONDS).
    3. Continuity: if the lag exceeds what the overlap can cover, or the floor is older than the
       bare feed serves, the uncovered window becomes a gap for `data_api.gaps` — recorded, and
       the run is partial, never a silent success.
    4. The mark moves only when the walk has provably reached its floor; an interrupted walk
       (error, page cap, kill) keeps its cursor and the next run carries on from it.
    """
    cursor = cursor_read(source=SOURCE, stream=LIVE_STREAM)
    status = upstream_status_poll(client=client)
    lag = status.get("lag_seconds")
    overlap, lag_source = overlap_from_lag(lag)
    mark = int(cursor.cursor_value) if cursor.cursor_value.isdigit() else None
    now = datetime.fromisoformat(status["upstream_time"]) if status.get("upstream_time") else timezone.now()
    gaps: list[IngestGap] = []

    walk = WalkState.from_json(cursor.state.get("walk"))
    resumed = walk is not None
    if walk is None:
        walk = WalkState(filters=dict(LIVE_FILTERS))
        if mark is not None:
            walk.floor = mark - overlap
            gaps += _continuity_gaps(run=run, mark=mark, overlap=overlap, lag=lag, floor=walk.floor, now=now)
            horizon = unix(bare_feed_horizon(now))
            if walk.floor < horizon:
                walk.floor = horizon

    def save(state: WalkState) -> None:
        cursor_advance(cursor=cursor, state={**cursor.state, "walk": state.to_json()})

    outcome = cursor_walk(
        client=client,
        path=TRADES_PATH,
        state=walk,
        write_page=lambda rows, counter: trade_page_v2_ingest(run=run, rows=rows, counter=counter, stream=LIVE_STREAM),
        prepare_body=trade_body_preparer(),
        page_writers=settings.INGEST_PAGE_WRITERS,
        save_state=save,
        max_pages=settings.INGEST_MAX_PAGES_PER_RUN,
        first_limit=settings.INGEST_TRADES_PAGE_SIZE,
        floor_below_head=None if mark is not None else settings.INGEST_TRADES_INITIAL_SECONDS,
    )
    measured = {"serving_lag_seconds": lag, "overlap_seconds": overlap, "lag_source": lag_source}
    moved_to = None
    if outcome.reached:
        if walk.head is not None:
            moved_to = str(walk.head)
        cursor_advance(cursor=cursor, to=moved_to, state={"last_run": measured})
    elif outcome.stop_reason == "cursor_rejected":
        cursor_advance(cursor=cursor, state={"last_run": measured})
    else:
        save(walk)
    if gaps:
        follow_up_enqueue(task_name="ingest.data_api.gaps")

    if outcome.reached and not gaps:
        status_value = RunStatus.SUCCEEDED
    elif outcome.pages or gaps or outcome.stop_reason == "cursor_rejected":
        status_value = RunStatus.PARTIAL
    else:
        status_value = RunStatus.FAILED
    return JobOutcome(
        status=status_value,
        stats={
            **_walk_stats(outcome, client),
            **measured,
            "resumed_walk": resumed,
            "walk_in_progress": not outcome.reached and outcome.stop_reason != "cursor_rejected",
            "mark_before": mark,
            "mark_after": int(cursor.cursor_value) if cursor.cursor_value.isdigit() else None,
            "floor": walk.floor,
            "gaps": len(gaps),
            "gap_ids": [gap.pk for gap in gaps],
            "continuity_proven": outcome.reached and not gaps,
        },
        error=outcome.error,
    )


def _continuity_gaps(
    *, run: IngestRun, mark: int, overlap: int, lag: float | None, floor: int, now: datetime
) -> list[IngestGap]:
    """Windows this pass cannot prove it covers, each recorded as a gap.

    - The lag is larger than the overlap can be (clamped at the ceiling): fills older than the
      floor may have become visible since the last pass — [mark − lag − margin, floor).
    - The floor is older than the bare feed serves: [floor, horizon) needs condition reads.
    """
    gaps = []
    margin = settings.INGEST_OVERLAP_MARGIN_SECONDS
    if lag is not None and lag + margin > overlap:
        start = from_unix(int(mark - lag - margin))
        gaps.append(
            gap_record(source=SOURCE, stream=LIVE_STREAM, window_start=start, window_end=from_unix(floor), run=run,
                       detail={"reason": "serving_lag_beyond_overlap", "lag_seconds": lag, "overlap_seconds": overlap})
        )
    horizon = bare_feed_horizon(now)
    if from_unix(floor) < horizon:
        gaps.append(
            gap_record(source=SOURCE, stream=LIVE_STREAM, window_start=from_unix(floor), window_end=horizon, run=run,
                       detail={"reason": "older_than_the_bare_feed_serves", "horizon": horizon.isoformat()})
        )
    return gaps


def _walk_stats(outcome: WalkOutcome, client: SourceClient, **extra) -> dict:
    newest = outcome.result.newest_time
    return {
        **outcome.result.counts(),
        "pages": outcome.pages,
        "stop_reason": outcome.stop_reason or ("end_of_stream" if outcome.ended else "reached_floor"),
        "lag_seconds": round((timezone.now() - newest).total_seconds(), 3) if newest else None,
        "newest_upstream_time": newest.isoformat() if newest else None,
        "http": client.stats,
        **extra,
    }


# --- gaps: condition-scoped sweeps --------------------------------------------------------------


def markets_possibly_trading(since: datetime, until: datetime | None = None) -> list[str]:
    """Markets that could have traded in [since, until): not closed before it, not created after."""
    markets = Market.objects.filter(Q(closed_time__isnull=True) | Q(closed_time__gte=since))
    if until is not None:
        markets = markets.filter(Q(gamma_created_at__isnull=True) | Q(gamma_created_at__lt=until))
    return list(markets.order_by("condition_id").values_list("condition_id", flat=True))


def _market_crawl_started_after(moment: datetime) -> IngestRun | None:
    """The newest successful Gamma crawl that began after `moment` (our clock): it lists every
    market that existed then (open ones, and closed ones new since the previous crawl)."""
    return (
        IngestRun.objects.filter(job_name="ingest.gamma.markets", status=RunStatus.SUCCEEDED, started_at__gt=moment)
        .order_by("-started_at")
        .first()
    )


def conditions_walk_back(
    *,
    client: SourceClient,
    run: IngestRun | None,
    condition_ids: list[str],
    since: datetime,
    sweep: dict,
    save_sweep,
    window: tuple[datetime, datetime] | None = None,
    dry_run: bool = False,
    stream: str = LIVE_STREAM,
    progress=None,
    max_pages: int | None = None,
) -> tuple[PageResult, int, str]:
    """Read every fill of these markets back to `since`, ≤ 20 markets a request (condition reads
    serve three years, so every group can reach it).

    Resumable: `sweep` holds the index of the next group and the walk state of the current one;
    `save_sweep(sweep)` is called after each page, so a bad read or a kill costs one page, not
    the sweep. Returns (what was written, pages, error: "" when every group reached `since`).
    """
    total = PageResult()
    pages = 0
    groups = [condition_ids[i : i + CONDITIONS_PER_REQUEST] for i in range(0, len(condition_ids), CONDITIONS_PER_REQUEST)]
    budget = max_pages or settings.INGEST_MAX_PAGES_PER_RUN
    while sweep.get("next_group", 0) < len(groups):
        index = sweep.get("next_group", 0)
        group = groups[index]
        walk = WalkState.from_json(sweep.get("walk")) or WalkState(
            filters={"condition": ",".join(group), **LIVE_FILTERS}, floor=unix(since)
        )

        def save(state: WalkState, index: int = index) -> None:
            save_sweep({**sweep, "next_group": index, "walk": state.to_json()})

        outcome = cursor_walk(
            client=client,
            path=TRADES_PATH,
            state=walk,
            write_page=lambda rows, counter: trade_page_v2_ingest(
                run=run, rows=rows, counter=counter, stream=stream, window=window, dry_run=dry_run
            ),
            # A dry run previews parsed fills, which a portable page no longer holds.
            prepare_page=(lambda rows, counter: trade_page_v2_prepare(rows, counter, window=window)) if dry_run else None,
            prepare_body=None if dry_run else trade_body_preparer(window=window),
            page_writers=1 if dry_run else settings.INGEST_PAGE_WRITERS,
            save_state=save,
            max_pages=budget - pages,
            first_limit=settings.INGEST_TRADES_PAGE_SIZE,
        )
        total.add(outcome.result)
        pages += outcome.pages
        if not outcome.reached:
            if outcome.stop_reason == "cursor_rejected":
                sweep["walk"] = None  # this group starts again from its head
                save_sweep(sweep)
            else:
                save(walk)
                sweep["walk"] = walk.to_json()
            return total, pages, outcome.error or outcome.stop_reason
        sweep["next_group"] = index + 1
        sweep["walk"] = None
        save_sweep(sweep)
        if progress:
            progress(f"markets {min((index + 1) * CONDITIONS_PER_REQUEST, len(condition_ids))}/{len(condition_ids)}: "
                     f"{total.inserted} new, {total.duplicates} already stored")
    return total, pages, ""


def trades_gap_backfill(*, run: IngestRun, client: SourceClient) -> JobOutcome:
    """Close open gaps of the live feed with condition-scoped reads.

    A sweep covers every gap open when it starts, over every market that could have traded in
    their union — known from a Gamma crawl that began after the newest gap ended, so a market
    created since the last crawl is never left out. Its progress is kept on the gaps cursor: a
    bad read or a kill resumes where it stopped. Gaps close only when every group of markets
    provably reached the sweep's floor; one that keeps failing past INGEST_GAP_MAX_ATTEMPTS is
    marked exhausted — a visible loss on the health page and in metrics, never a silent one.
    """
    cursor = cursor_read(source=SOURCE, stream=GAPS_STREAM)
    sweep = cursor.state.get("sweep") if isinstance(cursor.state.get("sweep"), dict) else None
    open_gaps = IngestGap.objects.filter(source=SOURCE, stream=LIVE_STREAM, status=IngestGap.Status.OPEN)
    if sweep is None:
        covered = list(open_gaps.order_by("id"))
        if not covered:
            return JobOutcome(status=RunStatus.SUCCEEDED, stats={"gaps_open": 0, "http": client.stats})
        since = min(gap.window_start for gap in covered)
        until = max(gap.window_end for gap in covered)
        # By our clock, like the crawl's start: a gap's window is upstream time, whose clock may
        # run ahead of or behind ours. A market that could have traded in the window existed when
        # the gap was recorded, so a crawl begun after that lists it.
        crawl = _market_crawl_started_after(max(gap.created_at for gap in covered))
        if crawl is None:
            follow_up_enqueue(task_name="ingest.gamma.markets")
            for gap in covered:
                IngestGap.objects.filter(pk=gap.pk).update(
                    detail={**gap.detail, "waiting_for": "a Gamma market crawl that started after the gap ended"}
                )
            return JobOutcome(
                status=RunStatus.PARTIAL,
                stats={"gaps_open": len(covered), "waiting_for_market_crawl": True, "http": client.stats},
                error="waiting for a Gamma market crawl newer than the gaps (queued)",
            )
        sweep = {
            "gap_ids": [gap.pk for gap in covered],
            "since": since.isoformat(),
            "until": until.isoformat(),
            "market_crawl_run": crawl.pk,
            "conditions": markets_possibly_trading(since, until),
            "next_group": 0,
            "walk": None,
        }
        cursor_advance(cursor=cursor, state={"sweep": sweep})

    def save_sweep(state: dict) -> None:
        cursor_advance(cursor=cursor, state={"sweep": state})

    since = datetime.fromisoformat(sweep["since"])
    total, pages, error = conditions_walk_back(
        client=client, run=run, condition_ids=sweep["conditions"], since=since, sweep=sweep, save_sweep=save_sweep
    )
    gap_ids = sweep["gap_ids"]
    IngestGap.objects.filter(pk__in=gap_ids).update(attempts=F("attempts") + 1)
    closed = exhausted = 0
    if not error:
        for gap in IngestGap.objects.filter(pk__in=gap_ids, status=IngestGap.Status.OPEN):
            IngestGap.objects.filter(pk=gap.pk).update(
                status=IngestGap.Status.CLOSED,
                closed_by_run=run,
                closed_at=timezone.now(),
                detail={
                    **gap.detail,
                    "closed_via": "condition reads",
                    "markets": len(sweep["conditions"]),
                    "swept_since": sweep["since"],
                    "market_crawl_run": sweep["market_crawl_run"],
                },
            )
            closed += 1
        cursor_advance(cursor=cursor, state={})
    else:
        for gap in IngestGap.objects.filter(pk__in=gap_ids, status=IngestGap.Status.OPEN):
            detail = {**gap.detail, "last_error": error[:500],
                      "sweep_progress": f"{sweep.get('next_group', 0)} of "
                                        f"{-(-len(sweep['conditions']) // CONDITIONS_PER_REQUEST)} market groups"}
            if gap.attempts >= settings.INGEST_GAP_MAX_ATTEMPTS:
                IngestGap.objects.filter(pk=gap.pk).update(status=IngestGap.Status.EXHAUSTED, detail=detail)
                exhausted += 1
            else:
                IngestGap.objects.filter(pk=gap.pk).update(detail=detail)
    stats = {
        **total.counts(),
        "pages": pages,
        "markets": len(sweep["conditions"]),
        "gaps_closed": closed,
        "gaps_exhausted": exhausted,
        "gaps_still_open": len(gap_ids) - closed - exhausted,
        "http": client.stats,
    }
    return JobOutcome(status=RunStatus.SUCCEEDED if not error else RunStatus.PARTIAL, stats=stats, error=error)


# --- wallet histories ---------------------------------------------------------------------------


def wallet_history_backfill(*, run: IngestRun, client: SourceClient) -> JobOutcome:
    """Fetch the whole history of newly seen wallets: `user=…&start=1` walks to the end.

    Bounded per run and per wallet; each wallet's walk resumes from its stored cursor, and the
    least recently attempted wallets go first, so a long history advances a slice per run
    without starving the others.
    """
    wallets = list(
        Wallet.objects.filter(history_backfilled_at__isnull=True)
        .order_by(F("history_attempted_at").asc(nulls_first=True), "id")[: settings.INGEST_BACKFILL_WALLETS_PER_RUN]
    )
    total = PageResult()
    pages = completed = 0
    errors: list[str] = []
    for wallet in wallets:
        outcome = wallet_stream_walk(
            client=client, wallet=wallet, stream=HISTORY_STREAM, path=TRADES_PATH,
            filters={"start": "1", **LIVE_FILTERS},
            write_page=lambda rows, counter: trade_page_v2_ingest(run=run, rows=rows, counter=counter,
                                                                  stream=HISTORY_STREAM),
        )
        total.add(outcome.result)
        pages += outcome.pages
        now = timezone.now()
        wallet_updates: dict = {"history_attempted_at": now}
        if outcome.ended:
            wallet_updates["history_backfilled_at"] = now
            completed += 1
        Wallet.objects.filter(pk=wallet.pk).update(**wallet_updates)
        if outcome.stop_reason == "upstream_error":
            errors.append(outcome.error)
            break
    stats = {**total.counts(), "pages": pages, "wallets": len(wallets), "wallets_completed": completed,
             "http": client.stats}
    return JobOutcome(status=RunStatus.PARTIAL if errors else RunStatus.SUCCEEDED, stats=stats,
                      error=errors[-1] if errors else "")


def serving_lag_of_record() -> Decimal | None:
    """The last serving lag `/v2/status` reported (for the health page and metrics)."""
    cursor = IngestCursor.objects.filter(source=SOURCE, stream=STATUS_STREAM).first()
    lag = cursor.state.get("lag_seconds") if cursor else None
    return Decimal(str(lag)) if lag is not None else None
