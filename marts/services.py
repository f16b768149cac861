"""The compute path (ARCHITECTURE §5): changed wallets in, replaced mart rows out.

One batch is a handful of set-based statements whatever its size: lock the batch's wallets, read
all their fills in one ordered query (plus one query each for markets, tokens, events), compute in
Python, then bring each table to the computed rows for exactly those wallets — reading back the
rows in scope and writing only those whose stored bytes change (COPY new rows, upsert changed
ones through a COPY-filled temporary stage) — and upsert the snapshot, all in one transaction, so
readers never see half a wallet.

Concurrency: several compute workers may drain at once. The queue pop is atomic, but a wallet can
be pushed again while a worker still computes it; per-wallet transaction-scoped advisory locks
(pg_try_advisory_xact_lock) make a second worker skip it and push it back, so it is recomputed
after the first commit and never by two workers at once. Results depend only on facts and `now`.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from arbitra.sql_arrays import int_array, timestamp_array
from ingest.changes import changed_wallets_pop, changed_wallets_push
from marts import selectors
from marts.bulk import copy_rows, fast_rows, staged_upsert, stored_money
from marts.compute import WINDOWS, WalletMart, floor_1h, floor_5m, wallet_mart_compute
from marts.models import ComputeCursor

logger = logging.getLogger(__name__)

# The advisory-lock namespace of wallet computations ("MART"); ingest's job locks use the
# one-argument bigint form, whose key space PostgreSQL keeps apart from this two-int form.
WALLET_LOCK_CLASS = 0x4D415254
RECONCILE_CURSOR = "marts.reconcile"
SLIDE_CURSOR = "marts.windows_slide"


@dataclass(frozen=True)
class ComputeConfig:
    info_edge_horizon: timedelta
    potential_min_trades: int
    potential_min_realized_pnl: Decimal

    @classmethod
    def from_settings(cls) -> ComputeConfig:
        return cls(
            info_edge_horizon=timedelta(minutes=settings.INFO_EDGE_HORIZON_MINUTES),
            potential_min_trades=int(settings.POTENTIAL_MIN_TRADES),
            potential_min_realized_pnl=Decimal(str(settings.POTENTIAL_MIN_REALIZED_PNL)),
        )


@dataclass
class BatchResult:
    computed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


# What consumes a freshly computed batch inside its transaction (scores, anomalies, feed): the
# scoring app registers its writer when Django starts (scoring.apps), so marts never imports the
# layer above it and the compute pipeline — marts, then scoring — is assembled from above.
_batch_consumers: list[Callable[..., None]] = []


def mart_batch_consumer_register(consumer: Callable[..., None]) -> None:
    """Call `consumer(marts=…, markets=…, now=…, changed_from=…)` after every batch's marts are
    written; `changed_from` maps each wallet to the earliest fill time its new facts can have
    changed (ALL_BUCKETS: everything, NO_BUCKETS: nothing new)."""
    if consumer not in _batch_consumers:
        _batch_consumers.append(consumer)


def wallet_batch_compute(*, wallet_ids: list[int], now: datetime | None = None) -> BatchResult:
    """Recompute the marts of a set of wallets from their facts, then hand them to the registered
    consumers (scores, anomalies and feed) in the same transaction.

    Wallets another worker is computing right now are skipped and returned in `skipped`; the
    caller pushes them back. Safe to run twice: every row is replaced, never incremented.
    """
    ids = sorted({int(wallet_id) for wallet_id in wallet_ids})
    result = BatchResult()
    if not ids:
        return result
    now = now or timezone.now()
    config = ComputeConfig.from_settings()
    with _cyclic_gc_paused(), transaction.atomic():
        claims = _wallets_lock(wallet_ids=ids)
        result.computed = [wallet_id for wallet_id, locked in claims if locked]
        result.skipped = [wallet_id for wallet_id, locked in claims if not locked]
        if not result.computed:
            return result
        marts, markets = _marts_build(wallet_ids=result.computed, now=now, config=config)
        dirty_from = _dirty_bucket_starts(marts=marts)
        _marts_write(marts=marts, now=now, dirty_from=dirty_from)
        for consumer in _batch_consumers:
            consumer(marts=marts, markets=markets, now=now, changed_from=dirty_from)
        _wallets_last_trade_sync(marts=marts)
    return result


def _wallets_last_trade_sync(*, marts: list[WalletMart]) -> None:
    """Bring `wallet.last_trade_at` to the newest fill the marts just read.

    Ingest does not move it page by page: nearly every wallet on a page has a newer trade, so
    that cost an UPDATE of ~900 wallet rows per 1,000-fill page on the hottest write path (a
    sixth of a page's time); here it is one row per changed wallet per drain, seconds later.
    Last statement of the batch transaction, so the row locks live only until its commit.
    """
    newest = sorted((mart.wallet_id, mart.last_trade_at) for mart in marts if mart.last_trade_at is not None)
    if not newest:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE wallet AS w SET last_trade_at = v.last_trade_at
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(wallet_id, last_trade_at)
            WHERE w.id = v.wallet_id AND w.last_trade_at IS DISTINCT FROM v.last_trade_at
            """,
            [int_array(wallet_id for wallet_id, _ in newest), timestamp_array(moment for _, moment in newest)],
        )


_gc_pause_lock = threading.Lock()
_gc_pause_holders = 0
_gc_enabled_before_pause = True


@contextmanager
def _cyclic_gc_paused():
    """A batch allocates ~10^5 objects that live until it ends (fills, Decimals, rows) and form no
    reference cycles. Left on, the cyclic collector promotes them and rescans the whole heap
    several times per batch (~60 ms of ~400 ms measured); reference counting frees them anyway.
    The collector is process-wide and drain lanes overlap: the first batch in pauses it, the last
    one out restores what the process had."""
    global _gc_pause_holders, _gc_enabled_before_pause
    with _gc_pause_lock:
        if _gc_pause_holders == 0:
            _gc_enabled_before_pause = gc.isenabled()
            gc.disable()
        _gc_pause_holders += 1
    try:
        yield
    finally:
        with _gc_pause_lock:
            _gc_pause_holders -= 1
            if _gc_pause_holders == 0 and _gc_enabled_before_pause:
                gc.enable()


def _wallets_lock(*, wallet_ids: list[int]) -> list[tuple[int, bool]]:
    """(id, locked) of every existing wallet among the ids; the locks we got are held until the
    transaction ends. One statement tells both which wallets exist and which we may compute."""
    with connection.cursor() as cursor:
        # Ids beyond 2^31 share a lock slot with a smaller one: that only serialises two wallets.
        cursor.execute(
            """
            SELECT w.id, pg_try_advisory_xact_lock(%s, (w.id %% 2147483647)::int)
            FROM wallet w WHERE w.id = ANY(%s::bigint[])
            ORDER BY w.id
            """,
            [WALLET_LOCK_CLASS, int_array(wallet_ids)],
        )
        return [(row[0], row[1]) for row in cursor.fetchall()]


def _marts_build(*, wallet_ids: list[int], now: datetime, config: ComputeConfig):
    fills = selectors.fills_for_wallets(wallet_ids=wallet_ids)
    market_ids = {fill.market_id for wallet_fills in fills.values() for fill in wallet_fills}
    markets = selectors.market_facts_for(market_ids=market_ids)
    tokens = selectors.token_facts_for(market_ids=market_ids)
    needs_price = sorted(
        {
            (fill.market_id, fill.token_id)
            for wallet_fills in fills.values()
            for fill in wallet_fills
            if (fill.token_id not in tokens or tokens[fill.token_id].latest_price is None)
            and not (fill.market_id in markets and markets[fill.market_id].is_resolved)
        }
    )
    last_prices = selectors.last_fill_prices_for(tokens=needs_price)
    event_times = {}
    if fills:
        # Fills are sorted by time within each wallet: the first and last bound the batch.
        event_times = selectors.event_times_for(
            market_ids=market_ids,
            since=min(wallet_fills[0].traded_at for wallet_fills in fills.values()),
            until=max(wallet_fills[-1].traded_at for wallet_fills in fills.values()) + config.info_edge_horizon,
        )
    marts = [
        wallet_mart_compute(
            wallet_id=wallet_id,
            fills=fills.get(wallet_id, []),
            markets=markets,
            tokens=tokens,
            last_prices=last_prices,
            event_times=event_times,
            now=now,
            info_edge_horizon=config.info_edge_horizon,
            potential_min_trades=config.potential_min_trades,
            potential_min_realized_pnl=config.potential_min_realized_pnl,
        )
        for wallet_id in wallet_ids
    ]
    return marts, markets


AGG_COLUMNS = [
    "wallet_id", "bucket_start", "trades", "buy_trades", "sell_trades", "buy_volume", "sell_volume",
    "buy_shares", "sell_shares", "fees", "realized_pnl", "markets_traded",
]
POSITION_COLUMNS = [
    "wallet_id", "token_id", "market_id", "outcome_index", "status", "trades", "shares", "avg_cost", "cost_basis",
    "bought_shares", "bought_usdc", "sold_shares", "sold_usdc", "fees", "realized_pnl", "settlement_price",
    "settled_shares", "settled_at", "mark_price", "unrealized_pnl", "first_trade_at", "last_trade_at",
]
DAILY_COLUMNS = [
    "wallet_id", "day", "trades", "buy_volume", "sell_volume", "fees", "realized_pnl", "markets_traded", "max_trade_usdc",
]
WINDOW_COLUMNS = [
    "wallet_id", "window", "as_of", "trades", "volume", "buy_volume", "sell_volume", "fees", "realized_pnl",
    "active_days", "markets_traded",
]
COMPUTE_STATE_COLUMNS = ["wallet_id", "last_computed_at", "facts_through", "last_trade_at", "fills"]


# Far enough in the past to mean "every bucket" in a timestamptz comparison.
ALL_BUCKETS = datetime(1970, 1, 1, tzinfo=UTC)
NO_BUCKETS = datetime(9999, 1, 1, tzinfo=UTC)


def _dirty_bucket_starts(*, marts: list[WalletMart]) -> dict[int, datetime]:
    """Per wallet, the first 5-minute bucket its new fills can have changed.

    Position accounting runs forward in time, so a fill at t changes nothing in buckets before t:
    only buckets from floor(t) on are rebuilt. "New" means ingested after the previous
    computation's `facts_through`; when the fill count does not add up (a late commit, no previous
    computation) every bucket is rebuilt. Dirty 1h buckets start at the hour of the same time.
    """
    rows = fast_rows(
        "SELECT wallet_id, facts_through, fills FROM wallet_compute_state WHERE wallet_id = ANY(%s::bigint[])",
        [int_array(mart.wallet_id for mart in marts)],
    )
    states = {wallet_id: (facts_through, fills) for wallet_id, facts_through, fills in rows}
    dirty: dict[int, datetime] = {}
    for mart in marts:
        state = states.get(mart.wallet_id)
        if state is None or state[0] is None:
            dirty[mart.wallet_id] = ALL_BUCKETS
            continue
        facts_through, seen = state
        new = [fill.traded_at for fill in mart.fills if fill.ingested_at > facts_through]
        if seen + len(new) != len(mart.fills):
            dirty[mart.wallet_id] = ALL_BUCKETS
        else:
            dirty[mart.wallet_id] = floor_5m(min(new)) if new else NO_BUCKETS
    return dirty


def _since_1h(since_5m: datetime) -> datetime:
    return floor_1h(since_5m) if since_5m not in (ALL_BUCKETS, NO_BUCKETS) else since_5m


def _marts_write(*, marts: list[WalletMart], now: datetime, dirty_from: dict[int, datetime]) -> None:
    """Bring the mart tables to the computed rows, writing only rows whose stored bytes change.

    Each table's current rows in scope are read back (by the wallet's key index) and
    compared with the computed rows rounded as the columns store them: an unchanged row is left
    alone, a changed one is updated in place, a new one is copied in, a row no longer computed is
    deleted. Most of a changed wallet's rows are unchanged (one new fill touches one bucket, one
    day, one position), so a batch writes a few rows per wallet instead of rewriting all of them.
    Windows end at `now` and change on every run: they are upserted without reading them first.
    """
    wallet_ids = [mart.wallet_id for mart in marts]
    agg_5m, agg_1h, positions, daily, windows = [], [], [], [], []
    s = stored_money
    for mart in marts:
        w = mart.wallet_id
        since_5m = dirty_from[w]
        for rows, buckets, since in ((agg_5m, mart.buckets_5m, since_5m), (agg_1h, mart.buckets_1h, _since_1h(since_5m))):
            for start in sorted(buckets):
                if start < since:
                    continue
                b = buckets[start]
                rows.append((w, start, b.trades, b.buy_trades, b.sell_trades, s(b.buy_volume), s(b.sell_volume),
                             s(b.buy_shares), s(b.sell_shares), s(b.fees), s(b.realized_pnl), len(b.markets)))
        for p in mart.positions:
            positions.append((
                w, p.token_id, p.market_id, p.outcome_index, p.status, p.trades, s(p.shares), s(p.avg_cost),
                s(p.cost_basis), s(p.bought_shares), s(p.bought_usdc), s(p.sold_shares), s(p.sold_usdc), s(p.fees),
                s(p.realized_pnl), None if p.settlement_price is None else s(p.settlement_price), s(p.settled_shares),
                p.settled_at, None if p.mark_price is None else s(p.mark_price), s(p.unrealized_pnl),
                p.first_trade_at, p.last_trade_at,
            ))
        for day in sorted(mart.daily):
            d = mart.daily[day]
            daily.append((w, day, d.trades, s(d.buy_volume), s(d.sell_volume), s(d.fees), s(d.realized_pnl),
                          len(d.markets), s(d.max_trade_usdc)))
        for name in WINDOWS:
            win = mart.windows[name]
            windows.append((w, name, now, win.trades, win.volume, win.buy_volume, win.sell_volume,
                            win.fees, win.realized_pnl, win.active_days, win.markets_traded))

    # Wallets whose buckets cannot have changed (no new fill) are not even read.
    bucket_scope = [(w, dirty_from[w]) for w in wallet_ids if dirty_from[w] != NO_BUCKETS]
    scope_ids = [w for w, _ in bucket_scope]
    with connection.cursor() as cursor:
        for table, columns, rows, key_size, scope_sql, params in (
            ("wallet_trade_agg_5m", AGG_COLUMNS, agg_5m, 2, _BUCKETS_IN_SCOPE,
             [int_array(scope_ids), timestamp_array(since for _, since in bucket_scope)]),
            ("wallet_trade_agg_1h", AGG_COLUMNS, agg_1h, 2, _BUCKETS_IN_SCOPE,
             [int_array(scope_ids), timestamp_array(_since_1h(since) for _, since in bucket_scope)]),
            ("wallet_position", POSITION_COLUMNS, positions, 2, _WALLETS_IN_SCOPE, [int_array(wallet_ids)]),
            ("wallet_daily_feature", DAILY_COLUMNS, daily, 2, _WALLETS_IN_SCOPE, [int_array(wallet_ids)]),
        ):
            if not rows and params[0] == "{}":
                continue
            existing = fast_rows(
                f"SELECT t.id, {', '.join(f't.{c}' for c in columns)} FROM {table} t {scope_sql}",  # noqa: S608
                params,
            )
            _rows_sync(cursor, table=table, columns=columns, key_size=key_size, rows=rows, existing=existing)
    staged_upsert(table="wallet_window", columns=WINDOW_COLUMNS, key=["wallet_id", "window"], rows=windows)
    staged_upsert(
        table="wallet_compute_state", columns=COMPUTE_STATE_COLUMNS, key=["wallet_id"],
        rows=[(mart.wallet_id, now, mart.facts_through, mart.last_trade_at, mart.total_trades) for mart in marts],
    )


# The rows a batch may rewrite: from each wallet's first dirty bucket on (an index range scan of
# the (wallet_id, bucket_start) key per wallet), or all of each wallet's rows.
_BUCKETS_IN_SCOPE = (
    "JOIN unnest(%s::bigint[], %s::timestamptz[]) AS d(wallet_id, since) "
    "ON t.wallet_id = d.wallet_id AND t.bucket_start >= d.since"
)
_WALLETS_IN_SCOPE = "WHERE t.wallet_id = ANY(%s::bigint[])"


def _rows_sync(cursor, *, table: str, columns: list[str], key_size: int, rows: list[tuple], existing: list[tuple]) -> None:
    """Write the rows that differ from `existing` ((id, *columns) rows; the first `key_size`
    columns are the natural key): new keys are copied in, changed rows are updated in place
    (no index entry moves unless an indexed value changed), vanished keys are deleted."""
    current = {row[1 : key_size + 1]: row for row in existing}
    fresh: list[tuple] = []
    changed: list[tuple] = []
    for row in rows:
        old = current.pop(row[:key_size], None)
        if old is None:
            fresh.append(row)
        elif old[1:] != row:
            changed.append(row)
    if current:
        cursor.execute(
            f"DELETE FROM {table} WHERE id = ANY(%s::bigint[])",  # noqa: S608
            [int_array(old[0] for old in current.values())],
        )
    copy_rows(cursor, table, columns, fresh)
    staged_upsert(table=table, columns=columns, key=columns[:key_size], rows=changed)


@dataclass
class DrainResult:
    batches: int = 0
    computed: int = 0
    skipped: int = 0
    seconds: float = 0.0


class _DrainProgress:
    """What the lanes of one drain share: the budget, the batch count and the totals."""

    def __init__(self, *, budget: float, max_batches: int | None) -> None:
        self.started = time.monotonic()
        self.budget = budget
        self.max_batches = max_batches
        self.claimed = 0
        self.result = DrainResult()
        self._lock = threading.Lock()

    def claim(self) -> bool:
        """May a lane start one more batch?"""
        with self._lock:
            if time.monotonic() - self.started >= self.budget:
                return False
            if self.max_batches is not None and self.claimed >= self.max_batches:
                return False
            self.claimed += 1
            return True

    def record(self, batch: BatchResult) -> None:
        with self._lock:
            self.result.batches += 1
            self.result.computed += len(batch.computed)
            self.result.skipped += len(batch.skipped)


def changed_wallets_drain(
    *, batch_size: int | None = None, time_budget_seconds: float | None = None, max_batches: int | None = None,
    lanes: int | None = None,
) -> DrainResult:
    """Pop and compute batches until the queue is empty, the time budget is spent, or a batch
    made no progress (every wallet held by another worker: let that worker finish first).

    `lanes` (COMPUTE_DRAIN_LANES) batches are in flight at once, each on its own thread, database
    connection and transaction: a batch spends ~40% of its time waiting for PostgreSQL to read and
    write (profiled at W = 1M), and another lane computes in Python meanwhile. Lanes are workers in miniature: the
    per-wallet locks that keep two workers off one wallet keep two lanes off it too. Inside a
    caller's transaction the drain runs on that connection alone (other connections could not see
    what the transaction wrote).
    """
    batch_size = batch_size or int(settings.COMPUTE_BATCH_SIZE)
    budget = time_budget_seconds if time_budget_seconds is not None else float(settings.COMPUTE_DRAIN_BUDGET_SECONDS)
    lanes = max(1, lanes if lanes is not None else int(settings.COMPUTE_DRAIN_LANES))
    if connection.in_atomic_block:
        lanes = 1
    progress = _DrainProgress(budget=budget, max_batches=max_batches)
    if lanes == 1:
        _drain_lane(progress=progress, batch_size=batch_size)
    else:
        with ThreadPoolExecutor(max_workers=lanes - 1, thread_name_prefix="drain-lane") as pool:
            others = [pool.submit(_drain_thread_lane, progress=progress, batch_size=batch_size) for _ in range(lanes - 1)]
            # The calling thread is a lane too, on the connection it already has.
            _drain_lane(progress=progress, batch_size=batch_size)
            for lane in others:
                lane.result()  # re-raises a lane's error once every lane has stopped
    progress.result.seconds = time.monotonic() - progress.started
    return progress.result


def _drain_lane(*, progress: _DrainProgress, batch_size: int) -> None:
    while progress.claim():
        wallet_ids = changed_wallets_pop(batch_size=batch_size)
        if not wallet_ids:
            return
        try:
            batch = wallet_batch_compute(wallet_ids=wallet_ids)
        except BaseException:
            # The ids left Redis with the pop: put them back so a failure costs a retry, not the wallets.
            changed_wallets_push(wallet_ids=wallet_ids)
            raise
        if batch.skipped:
            changed_wallets_push(wallet_ids=batch.skipped)
        progress.record(batch)
        if not batch.computed:
            return


def _drain_thread_lane(*, progress: _DrainProgress, batch_size: int) -> None:
    try:
        _drain_lane(progress=progress, batch_size=batch_size)
    finally:
        connections.close_all()  # this thread's connections only: Django keeps them per thread


def market_resolution_requeue(*, market_ids: list[int]) -> int:
    """Queue every wallet with a position in these markets (call after a market resolves or its
    resolution changes). Wallets never computed yet are in the queue already from their fills."""
    wallet_ids = selectors.wallets_holding_markets(market_ids=[int(m) for m in market_ids])
    return changed_wallets_push(wallet_ids=wallet_ids) if wallet_ids else 0


def wallets_requeue_for_market_event(
    *, market_ids: list[int], horizon: timedelta | None = None, event_time: datetime | None = None
) -> int:
    """Queue the wallets whose fills a new off-chain event can pair with: fills in its markets
    within `horizon` before the event (default: INFO_EDGE_HORIZON_MINUTES before now)."""
    horizon = horizon or ComputeConfig.from_settings().info_edge_horizon
    event_time = event_time or timezone.now()
    wallet_ids = selectors.wallets_with_fills_in_markets(
        market_ids=[int(m) for m in market_ids], since=event_time - horizon, until=event_time
    )
    return changed_wallets_push(wallet_ids=wallet_ids) if wallet_ids else 0


def _cursor_advance(*, name: str, now: datetime, default: datetime) -> datetime:
    """Return the previous position of a compute cursor and move it to `now` (never backwards)."""
    cursor, created = ComputeCursor.objects.select_for_update().get_or_create(name=name, defaults={"position": default})
    previous = cursor.position
    if now > cursor.position:
        cursor.position = now
        cursor.updated_at = timezone.now()
        cursor.save(update_fields=["position", "updated_at"])
    return previous if not created else default


def wallet_windows_slide(*, now: datetime | None = None) -> int:
    """Queue wallets whose fills or settlements left a rolling window since the last run.

    Idle wallets' windows are then recomputed by the drain like any changed wallet. The first run
    looks back one drain-interval's worth, not over all history.
    """
    now = now or timezone.now()
    with transaction.atomic():
        previous = _cursor_advance(
            name=SLIDE_CURSOR, now=now, default=now - timedelta(seconds=settings.COMPUTE_SLIDE_INTERVAL_SECONDS)
        )
        wallet_ids = selectors.wallets_with_buckets_leaving_windows(
            previous=previous, now=now, windows=list(WINDOWS.values())
        )
    return changed_wallets_push(wallet_ids=wallet_ids) if wallet_ids else 0


def wallets_reconcile(*, now: datetime | None = None) -> dict[str, int]:
    """Re-queue wallets whose facts are newer than their last computation (ARCHITECTURE §5.4).

    Three checks, each bounded by what happened since the previous run (minus a margin for
    transactions that committed late): fills ingested after the wallet's `facts_through`;
    off-chain events linked since then (their markets' traders within the horizon); markets
    resolved since then (their holders).
    """
    now = now or timezone.now()
    margin = timedelta(seconds=settings.COMPUTE_RECONCILE_MARGIN_SECONDS)
    first_lookback = timedelta(seconds=settings.COMPUTE_RECONCILE_FIRST_LOOKBACK_SECONDS)
    horizon = ComputeConfig.from_settings().info_edge_horizon
    with transaction.atomic():
        previous = _cursor_advance(name=RECONCILE_CURSOR, now=now, default=now - first_lookback)
        since = previous - margin
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT f.wallet_id FROM trade_fill f
                LEFT JOIN wallet_compute_state s ON s.wallet_id = f.wallet_id
                WHERE f.ingested_at >= %s
                GROUP BY f.wallet_id, s.facts_through
                HAVING s.facts_through IS NULL OR max(f.ingested_at) > s.facts_through
                """,
                [since],
            )
            stale_fills = [row[0] for row in cursor.fetchall()]
            cursor.execute(
                """
                SELECT DISTINCT f.wallet_id
                FROM offchain_event e
                JOIN offchain_event_market em ON em.event_id = e.id
                JOIN trade_fill f ON f.market_id = em.market_id
                    AND f.traded_at <= em.event_time AND f.traded_at >= em.event_time - %s
                LEFT JOIN wallet_compute_state s ON s.wallet_id = f.wallet_id
                WHERE e.created_at >= %s AND (s.last_computed_at IS NULL OR s.last_computed_at < e.created_at)
                """,
                [horizon, since],
            )
            stale_events = [row[0] for row in cursor.fetchall()]
            cursor.execute(
                """
                SELECT DISTINCT p.wallet_id
                FROM market m JOIN wallet_position p ON p.market_id = m.id
                WHERE (m.winner_index IS NOT NULL OR m.is_void) AND p.status IN ('open', 'closed')
                  AND m.updated_at >= %s
                """,
                [since],
            )
            unsettled = [row[0] for row in cursor.fetchall()]
    pushed = changed_wallets_push(wallet_ids=[*stale_fills, *stale_events, *unsettled])
    counts = {"fills": len(stale_fills), "events": len(stale_events), "resolutions": len(unsettled), "pushed": pushed}
    if pushed:
        logger.info("reconciler re-queued wallets: %s", counts)
    return counts
