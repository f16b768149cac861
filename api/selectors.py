"""Reads of the serving API, over the latest-snapshot, mart and score tables and the dimension
tables (wallet, market). Nothing here reads `trade_fill` or the landing table: the previous
backend aggregated fills per request and its homepage slowed down as the data grew.

Every list is bounded by an index and a LIMIT. Totals of unfiltered lists and of the homepage
come from counters the writes maintain (`counters_get`); totals of filtered lists are cached
briefly in Redis (shared by all web processes), since an exact count over a million snapshots
costs more than the page itself and a total a few seconds old is fine for a pager. A Redis outage
only makes those reads slower.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Exists, Max, OuterRef, Prefetch, Q, QuerySet, Sum
from django.utils import timezone
from redis.exceptions import RedisError

from api import presenters
from api.filters import (
    PSEUDONYM_KEY,
    AnomalyFilter,
    FeedFilter,
    LeaderboardFilter,
    MarketFilter,
    PotentialFilter,
    WalletFilter,
    filtered,
)
from api.models import CounterDelta, Portfolio, PortfolioWallet, WatchlistEntry
from ingest.models import IngestCursor, Market, Wallet
from marts.models import WalletComputeState
from scoring.models import (
    NON_DIRECTIONAL_STRATEGIES,
    AiReport,
    Anomaly,
    FeedEvent,
    PoolTier,
    RiskLevel,
    StrategyType,
    WalletSnapshot,
)

logger = logging.getLogger(__name__)

# Lists embed the wallet view (id, address, pseudonym, tracked) only: loading the wallet's other
# columns (nine timestamps) for every row costs more than the query itself.
WALLET_VIEW_DEFERRED = [
    f"wallet__{name}"
    for name in [
        "name",
        "profile_image",
        "first_trade_at",
        "last_trade_at",
        "history_backfilled_at",
        "history_before",
        "history_attempted_at",
        "created_at",
        "updated_at",
    ]
]


@dataclass(frozen=True)
class Page:
    items: list
    page: int
    page_size: int
    total: int

    @property
    def pagination(self) -> dict:
        return {"page": self.page, "page_size": self.page_size, "total": self.total}


def _cache_get(key: str):
    """A cached value, or None when absent or when Redis is unreachable: a cache outage makes a
    read slower, never a 500."""
    try:
        return cache.get(key)
    except (RedisError, OSError) as error:
        logger.warning("cache unreachable (%s): computing %s directly", type(error).__name__, key)
        return None


def _cache_set(key: str, value, ttl: int) -> None:
    with contextlib.suppress(RedisError, OSError):  # already logged by the read that missed
        cache.set(key, value, ttl)


def _count(queryset: QuerySet, *, cached: bool) -> int:
    ttl = settings.API_COUNT_CACHE_SECONDS
    if not cached or ttl <= 0:
        return queryset.count()
    sql, params = queryset.query.sql_with_params()
    key = "api:count:" + hashlib.sha256(f"{sql}|{params!r}".encode()).hexdigest()
    total = _cache_get(key)
    if total is None:
        total = queryset.count()
        _cache_set(key, total, ttl)
    return total


# Once the trigger-written rows of api_counter_delta pass this many, a read folds them into one
# row per counter (in one statement, so a concurrent writer's new rows are kept).
COUNTER_FOLD_ROWS = 1000
COUNTER_FOLD_LOCK = 0x617069636F756E74  # pg advisory lock key: one folder at a time
COUNTER_FOLD_SQL = """
WITH moved AS (DELETE FROM api_counter_delta RETURNING name, delta)
INSERT INTO api_counter_delta (name, delta) SELECT name, sum(delta) FROM moved GROUP BY name
"""


def counters_get() -> dict[str, int]:
    """The maintained totals (wallets, tracked_wallets, markets, scored_wallets, trades,
    potential_wallets, anomalies), exact as of the last committed write."""
    rows = list(CounterDelta.objects.values("name").annotate(total=Sum("delta"), rows=Count("id")).order_by())
    if sum(row["rows"] for row in rows) > COUNTER_FOLD_ROWS:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [COUNTER_FOLD_LOCK])
            if cursor.fetchone()[0]:
                cursor.execute(COUNTER_FOLD_SQL)
    return {row["name"]: int(row["total"]) for row in rows}


def _unfiltered(filters: dict) -> bool:
    # An empty value is no filter (query strings send `pool_tier=` for an empty select).
    return all(value is None or value == "" for value in filters.values())


# From this offset a page is read keys first. OFFSET makes PostgreSQL build every skipped row
# before dropping it, joins (select_related) included: the leaderboard's deepest allowed page
# (page 50 of 200) took 214 ms p95 at 100k scored wallets against 27 ms at 10k. The keys query
# walks the ordering over the list's own table; only the page's rows are then joined and read.
KEYS_FIRST_OFFSET = 1_000


def _page_items(queryset: QuerySet, *, offset: int, limit: int) -> list:
    """The rows at [offset, offset + limit) of an ordered queryset, in its order."""
    if offset < KEYS_FIRST_OFFSET:
        return list(queryset[offset : offset + limit])
    keys = list(queryset.values_list("pk", flat=True)[offset : offset + limit])
    if len(set(keys)) != len(keys):
        # A filter joined a to-many relation and repeats rows: reading them by key would merge
        # the repeats, so this page is read as the plain slice.
        return list(queryset[offset : offset + limit])
    rows = {row.pk: row for row in queryset.filter(pk__in=keys).order_by()}
    # A row deleted between the two reads is left out rather than shifting the page.
    return [rows[key] for key in keys if key in rows]


def page_of(
    queryset: QuerySet, *, page: int, page_size: int, cached_count: bool = False, total: int | None = None
) -> Page:
    """One page of the queryset; `total`, when the caller knows it (a maintained counter), saves
    the COUNT."""
    offset = (page - 1) * page_size
    items = _page_items(queryset, offset=offset, limit=page_size)
    if page == 1 and len(items) < page_size:
        # The whole list fits on the first page: its length is the total, no COUNT needed.
        total = len(items)
    elif total is None:
        total = _count(queryset.order_by(), cached=cached_count)
    return Page(items=items, page=page, page_size=page_size, total=total)


def _counted_total(filters: dict, counter: str) -> int | None:
    return counters_get().get(counter, 0) if _unfiltered(filters) else None


def last_report_times_attach(snapshots: list[WalletSnapshot]) -> list[WalletSnapshot]:
    """Set `last_report_at` (time of the wallet's latest AI report, None without one) on each
    snapshot of a page: one grouped read over the (wallet, created_at) index for the whole page,
    not a subquery per row that every COUNT of the list would carry too."""
    with_reports = [snapshot.wallet_id for snapshot in snapshots if snapshot.has_ai_report]
    latest = dict(
        AiReport.objects.filter(wallet_id__in=with_reports)
        .values("wallet_id")
        .annotate(latest=Max("created_at"))
        .values_list("wallet_id", "latest")
    ) if with_reports else {}
    for snapshot in snapshots:
        snapshot.last_report_at = latest.get(snapshot.wallet_id)
    return snapshots


def _ordered(queryset: QuerySet, column: str, *, order: str, tie_breaker: str) -> QuerySet:
    """Sort by one column with the id as a stable tie-breaker in the same direction, which lets
    PostgreSQL walk a (column, id) index backwards or forwards."""
    prefix = "" if order == "asc" else "-"
    if column == tie_breaker:
        return queryset.order_by(f"{prefix}{column}")
    return queryset.order_by(f"{prefix}{column}", f"{prefix}{tie_breaker}")


# --- Wallets -------------------------------------------------------------------------------------

WALLET_SORT_COLUMNS = {
    "id": "id",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "first_seen_at": "first_trade_at",
    "pseudonym": "pseudonym_key",
}


def wallet_list(*, filters: dict, sort_by: str, order: str, page: int, page_size: int) -> Page:
    wallets = filtered(WalletFilter, filters, Wallet.objects.select_related("snapshot"))
    if not sort_by:
        sort_by = "pseudonym" if "pseudonym_key" in wallets.query.annotations else "id"
    if sort_by == "pseudonym" and "pseudonym_key" not in wallets.query.annotations:
        wallets = wallets.annotate(pseudonym_key=PSEUDONYM_KEY)
    if not order:
        order = "asc" if sort_by == "pseudonym" else "desc"
    wallets = _ordered(wallets, WALLET_SORT_COLUMNS[sort_by], order=order, tie_breaker="id")
    return page_of(wallets, page=page, page_size=page_size, cached_count=True, total=_counted_total(filters, "wallets"))


def wallet_get(*, wallet_id: int) -> Wallet | None:
    return Wallet.objects.select_related("snapshot").filter(pk=wallet_id).first()


POTENTIAL_SORT_COLUMNS = {
    "trade_count": "total_trades",
    "realized_pnl": "realized_pnl",
    "smart_score": "smart_score",
    "last_analyzed_at": "last_analyzed_at",
    "wallet_id": "wallet_id",
}


def wallet_potential_list(*, filters: dict, sort_by: str, order: str, page: int, page_size: int) -> Page:
    # Market makers and arbitrageurs do not bet on a side: never potential wallets to follow.
    snapshots = WalletSnapshot.objects.select_related("wallet").defer(*WALLET_VIEW_DEFERRED).exclude(
        strategy_type__in=NON_DIRECTIONAL_STRATEGIES
    )
    snapshots = filtered(PotentialFilter, filters, snapshots)
    snapshots = _ordered(snapshots, POTENTIAL_SORT_COLUMNS[sort_by], order=order, tie_breaker="wallet_id")
    result = page_of(snapshots, page=page, page_size=page_size, cached_count=True)
    last_report_times_attach(result.items)
    return result


def wallet_snapshot_get(*, wallet_id: int) -> WalletSnapshot | None:
    """The wallet's snapshot, or defaults for a known wallet not computed yet; None if unknown."""
    wallet = wallet_get(wallet_id=wallet_id)
    if wallet is None:
        return None
    snapshot = presenters.snapshot_or_default(wallet, getattr(wallet, "snapshot", None))
    return last_report_times_attach([snapshot])[0]


RECENT_EVENTS = 10


@dataclass(frozen=True)
class WalletProfile:
    wallet: Wallet
    snapshot: WalletSnapshot
    recent_events: list[FeedEvent]


def wallet_profile_get(*, wallet_id: int) -> WalletProfile | None:
    snapshot = wallet_snapshot_get(wallet_id=wallet_id)
    if snapshot is None:
        return None
    events = list(
        FeedEvent.objects.filter(wallet_id=wallet_id).select_related("wallet").order_by("-event_time", "-id")[:RECENT_EVENTS]
    )
    return WalletProfile(wallet=snapshot.wallet, snapshot=snapshot, recent_events=events)


def wallet_followers_count(*, wallet_id: int) -> tuple[int, int]:
    """(all followers, followers who started following in the last 7 days)."""
    since = timezone.now() - timedelta(days=7)
    counts = WatchlistEntry.objects.filter(wallet_id=wallet_id).aggregate(
        total=Count("id"), recent=Count("id", filter=Q(created_at__gte=since))
    )
    return counts["total"], counts["recent"]


def wallet_share_card_get(*, wallet_id: int) -> dict | None:
    snapshot = wallet_snapshot_get(wallet_id=wallet_id)
    if snapshot is None:
        return None
    followers, followers_7d = wallet_followers_count(wallet_id=wallet_id)
    summary, source = presenters.ai_summary(snapshot)
    return {
        "snapshot": snapshot,
        "wallet": snapshot.wallet,
        "total_trades": snapshot.total_trades,
        "realized_pnl": snapshot.realized_pnl,
        "trading_pnl": snapshot.trading_pnl,
        "total_pnl": snapshot.total_pnl,
        "smart_score": snapshot.smart_score,
        "info_edge_level": presenters.info_edge(snapshot)["label"],
        "strategy_type": snapshot.strategy_type,
        "pool_tier": snapshot.pool_tier,
        "has_ai_report": snapshot.has_ai_report,
        "nl_summary": summary,
        "ai_summary": summary,
        "ai_summary_source": source,
        "follower_count": followers,
        "new_followers_7d": followers_7d,
        "followers_7d": followers_7d,
        "updated_at": presenters.computed_at(snapshot),
    }


def wallet_share_landing_get(*, wallet_id: int) -> dict | None:
    card = wallet_share_card_get(wallet_id=wallet_id)
    if card is None:
        return None
    snapshot = card["snapshot"]
    return {
        **card,
        "pnl_7d": snapshot.pnl_7d,
        "pnl_30d": snapshot.pnl_30d,
        "max_drawdown_7d": snapshot.max_drawdown_7d,
        "stability_score": snapshot.stability_score,
        "decision_card": presenters.decision_card(snapshot),
    }


# --- Watchlist -----------------------------------------------------------------------------------


def _followed_wallet_ids(fingerprint: str) -> QuerySet:
    return WatchlistEntry.objects.filter(fingerprint=fingerprint).values("wallet_id")


def watchlist_list(*, fingerprint: str | None, page: int, page_size: int) -> Page:
    """The caller's followed wallets, newest follow first, each as its snapshot (or defaults)."""
    if fingerprint is None:
        return Page(items=[], page=page, page_size=page_size, total=0)
    entries = (
        WatchlistEntry.objects.filter(fingerprint=fingerprint)
        .select_related("wallet", "wallet__snapshot")
        .order_by("-created_at", "-id")
    )
    result = page_of(entries, page=page, page_size=page_size)
    items = []
    for entry in result.items:
        snapshot = presenters.snapshot_or_default(entry.wallet, getattr(entry.wallet, "snapshot", None))
        snapshot.watchlist_id = entry.id
        snapshot.watchlisted_at = entry.created_at
        items.append(snapshot)
    last_report_times_attach(items)
    return Page(items=items, page=result.page, page_size=result.page_size, total=result.total)


def watchlist_feed_list(*, fingerprint: str | None, filters: dict, page: int, page_size: int) -> Page:
    if fingerprint is None:
        return Page(items=[], page=page, page_size=page_size, total=0)
    events = (
        FeedEvent.objects.filter(wallet_id__in=_followed_wallet_ids(fingerprint))
        .select_related("wallet")
        .defer(*WALLET_VIEW_DEFERRED)
    )
    events = filtered(FeedFilter, filters, events).order_by("-event_time", "-id")
    return page_of(events, page=page, page_size=page_size)


ACTION_WINDOW = timedelta(days=7)


def watchlist_summary_get(*, fingerprint: str | None) -> dict:
    if fingerprint is None:
        return {"followed_wallets": 0, "style_distribution": {}, "action_required": 0, "healthy_wallets": 0}
    followed = _followed_wallet_ids(fingerprint)
    followed_count = WatchlistEntry.objects.filter(fingerprint=fingerprint).count()
    # Wallets not computed yet have no snapshot: they count as "unknown" style.
    styles = dict(
        WalletSnapshot.objects.filter(wallet_id__in=followed)
        .values_list("strategy_type")
        .annotate(n=Count("wallet_id"))
        .values_list("strategy_type", "n")
    )
    uncomputed = followed_count - sum(styles.values())
    if uncomputed:
        styles[StrategyType.UNKNOWN] = styles.get(StrategyType.UNKNOWN, 0) + uncomputed
    since = timezone.now() - ACTION_WINDOW
    # Counted per wallet, not per event, so healthy_wallets = followed − action_required holds.
    needing_action = (
        WatchlistEntry.objects.filter(fingerprint=fingerprint)
        .filter(Exists(FeedEvent.objects.filter(wallet_id=OuterRef("wallet_id"), action_required=True, event_time__gte=since)))
        .count()
    )
    return {
        "followed_wallets": followed_count,
        "style_distribution": dict(sorted(styles.items())),
        "action_required": needing_action,
        "healthy_wallets": followed_count - needing_action,
    }


# --- Portfolios ----------------------------------------------------------------------------------


@dataclass
class PortfolioView:
    id: int
    name: str
    name_zh: str
    description: str
    risk_level: str
    expected_return_value: float
    max_drawdown_value: float
    expected_return: str
    max_drawdown: str
    wallets: list[Wallet]
    source: str

    @property
    def wallet_ids(self) -> list[int]:
        return [wallet.id for wallet in self.wallets]


PACK_SIZE = 5

DERIVED_PACKS = [
    # (name, name_zh, description, risk_level, snapshot filter)
    (
        "Star wallets",
        "明星钱包",
        "The highest-scoring wallets of the star tier: long records, positive PnL.",
        RiskLevel.LOW,
        {"pool_tier": PoolTier.STAR},
    ),
    (
        "Event traders",
        "事件交易者",
        "Wallets that trade ahead of public news with a measurable information edge.",
        RiskLevel.HIGH,
        {"strategy_type": StrategyType.EVENT_TRADER},
    ),
    (
        "Systematic quants",
        "量化策略",
        "Broad, repeatable strategies across many markets.",
        RiskLevel.MEDIUM,
        {"strategy_type": StrategyType.QUANT},
    ),
]


def portfolio_list() -> list[PortfolioView]:
    managed = list(
        Portfolio.objects.filter(is_published=True).prefetch_related(
            Prefetch("members", queryset=PortfolioWallet.objects.select_related("wallet").order_by("position", "id"))
        )
    )
    if managed:
        return [
            PortfolioView(
                id=pack.id,
                name=pack.name,
                name_zh=pack.name_zh,
                description=pack.description,
                risk_level=pack.risk_level,
                expected_return_value=float(pack.expected_return),
                max_drawdown_value=float(pack.max_drawdown),
                expected_return=presenters.percent(float(pack.expected_return)),
                max_drawdown=presenters.drawdown_bound(float(pack.max_drawdown)),
                wallets=[member.wallet for member in pack.members.all()],
                source="managed",
            )
            for pack in managed
        ]
    return _portfolios_derived()


def _portfolios_derived() -> list[PortfolioView]:
    """Until operators curate packs, offer the top wallets of a few styles (empty packs are skipped)."""
    packs = []
    for number, (name, name_zh, description, risk, condition) in enumerate(DERIVED_PACKS, start=1):
        members = list(
            WalletSnapshot.objects.filter(**condition).select_related("wallet").order_by("-smart_score", "-wallet_id")[:PACK_SIZE]
        )
        if not members:
            continue
        returns = [float(member.roi) for member in members]
        drawdowns = [float(member.max_drawdown_7d / member.volume_30d) if member.volume_30d > 0 else 0.0 for member in members]
        packs.append(
            PortfolioView(
                id=number,
                name=name,
                name_zh=name_zh,
                description=description,
                risk_level=risk,
                expected_return_value=round(sum(returns) / len(returns), 6),
                max_drawdown_value=round(min(1.0, max(drawdowns)), 6),
                expected_return=presenters.return_range(returns),
                max_drawdown=presenters.drawdown_bound(min(1.0, max(drawdowns))),
                wallets=[member.wallet for member in members],
                source="derived",
            )
        )
    return packs


# --- Markets -------------------------------------------------------------------------------------

MARKET_SORT_COLUMNS = {name: name for name in ["id", "created_at", "updated_at", "volume", "liquidity"]}


def market_list(*, filters: dict, sort_by: str, order: str, page: int, page_size: int) -> Page:
    markets = filtered(MarketFilter, filters, Market.objects.all())
    markets = _ordered(markets, MARKET_SORT_COLUMNS[sort_by], order=order, tie_breaker="id")
    return page_of(markets, page=page, page_size=page_size, cached_count=True, total=_counted_total(filters, "markets"))


def market_get(*, market_id: int) -> Market | None:
    return Market.objects.prefetch_related("tokens").filter(pk=market_id).first()


# --- Leaderboard, stats, highlights --------------------------------------------------------------

LEADERBOARD_SORT_COLUMNS = {"smart_score": "smart_score", "scored_at": "scored_at"}


def leaderboard_list(*, filters: dict, sort_by: str, order: str, page: int, page_size: int) -> Page:
    # One row per wallet by construction: the snapshot's primary key is the wallet.
    snapshots = WalletSnapshot.objects.select_related("wallet").defer(*WALLET_VIEW_DEFERRED)
    snapshots = filtered(LeaderboardFilter, filters, snapshots)
    snapshots = _ordered(snapshots, LEADERBOARD_SORT_COLUMNS[sort_by], order=order, tie_breaker="wallet_id")
    total = _counted_total(filters, "scored_wallets")
    return page_of(snapshots, page=page, page_size=page_size, cached_count=True, total=total)


def _live_feed_read_through():
    """Newest trade time the live feed has read completely (its cursor): one indexed row."""
    cursor = IngestCursor.objects.filter(source="data_api", stream="trades").values_list("cursor_value", flat=True).first()
    if not cursor or not cursor.isdigit():
        return None
    return datetime.fromtimestamp(int(cursor), tz=UTC)


def stats_overview_get() -> dict:
    """Totals for the homepage, from the maintained counters (no request counts a table); `as_of`
    says when they were read. Cached for API_STATS_CACHE_SECONDS (a few seconds at most)."""
    key = "api:stats:overview"
    cached = _cache_get(key) if settings.API_STATS_CACHE_SECONDS > 0 else None
    if cached is not None:
        return cached
    now = timezone.now()
    counters = counters_get()
    latest_trade_at = _live_feed_read_through()
    last_computed_at = WalletComputeState.objects.aggregate(latest=Max("last_computed_at"))["latest"]
    overview = {
        "tracked_wallets": counters.get("tracked_wallets", 0),
        "indexed_markets": counters.get("markets", 0),
        "wallets": counters.get("wallets", 0),
        "scored_wallets": counters.get("scored_wallets", 0),
        "trades": counters.get("trades", 0),
        "potential_wallets": counters.get("potential_wallets", 0),
        "data_freshness": {
            "latest_trade_at": latest_trade_at,
            "last_computed_at": last_computed_at,
            "trade_lag_seconds": round((now - latest_trade_at).total_seconds(), 1) if latest_trade_at else None,
            "compute_lag_seconds": round((now - last_computed_at).total_seconds(), 1) if last_computed_at else None,
        },
        "as_of": now,
    }
    if settings.API_STATS_CACHE_SECONDS > 0:
        _cache_set(key, overview, settings.API_STATS_CACHE_SECONDS)
    return overview


def ops_highlights_get(*, limit: int) -> dict:
    now = timezone.now()
    directional = WalletSnapshot.objects.exclude(strategy_type__in=NON_DIRECTIONAL_STRATEGIES)
    snapshots = directional.select_related("wallet").defer(*WALLET_VIEW_DEFERRED)
    top_realized = list(snapshots.filter(realized_pnl_24h__gt=0).order_by("-realized_pnl_24h", "-wallet_id")[:limit])
    top_confidence = list(
        snapshots.filter(has_ai_report=True, ai_confidence__isnull=False).order_by("-ai_confidence", "-wallet_id")[:limit]
    )
    return {
        "as_of": now,
        # By trade time of the first crossing (the partial index on potential_reached_at), not by
        # when a row was inserted.
        "new_potential_wallets_24h": directional.filter(potential_reached_at__gte=now - timedelta(hours=24)).count(),
        "top_realized_pnl_24h": last_report_times_attach(top_realized),
        "top_ai_confidence": last_report_times_attach(top_confidence),
    }


# --- Anomalies and AI reports --------------------------------------------------------------------


def anomaly_list(*, filters: dict, page: int, page_size: int) -> Page:
    anomalies = filtered(AnomalyFilter, filters, Anomaly.objects.all()).order_by("-created_at", "-id")
    total = _counted_total(filters, "anomalies")
    return page_of(anomalies, page=page, page_size=page_size, cached_count=True, total=total)


def anomaly_get(*, anomaly_id: int) -> Anomaly | None:
    return Anomaly.objects.filter(pk=anomaly_id).first()


def ai_report_latest(*, wallet_id: int) -> AiReport | None:
    return AiReport.objects.filter(wallet_id=wallet_id).order_by("-created_at", "-id").first()


def ai_report_history(*, wallet_id: int, limit: int) -> list[AiReport]:
    return list(AiReport.objects.filter(wallet_id=wallet_id).order_by("-created_at", "-id")[:limit])


def wallet_exists(*, wallet_id: int) -> bool:
    return Wallet.objects.filter(pk=wallet_id).exists()
