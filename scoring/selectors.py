"""Reads of the scoring layer: news per market, market baselines of the edge test, point-in-time
scores, and the signal scorecard."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Case, Value, When

from arbitra.sql_arrays import int_array
from marts.bulk import fast_rows
from scoring.edge import MarketBaseline, time_share_before_news
from scoring.models import WalletSnapshot

# Lifecycle events (closed, resolved) are outcomes, not information: never news.
NEWS_KINDS = ("feed", "manual")
NEWS_KINDS_ARRAY = "{" + ",".join(NEWS_KINDS) + "}"  # for `%s::text[]`


def news_times_for(
    *, market_ids: set[int] | list[int] | None, since: datetime, until: datetime
) -> dict[int, list[datetime]]:
    """Times of news (off-chain events of a feed or entered by hand) per market in [since, until],
    sorted — of every market when `market_ids` is None."""
    times: dict[int, list[datetime]] = defaultdict(list)
    if market_ids is not None and not market_ids:
        return times
    markets = "" if market_ids is None else "em.market_id = ANY(%s::bigint[]) AND "
    rows = fast_rows(
        f"""
        SELECT em.market_id, em.event_time FROM offchain_event_market em
        JOIN offchain_event e ON e.id = em.event_id
        WHERE {markets}em.event_time >= %s AND em.event_time <= %s
          AND e.kind = ANY(%s::text[])
        ORDER BY em.market_id, em.event_time
        """,  # noqa: S608 - the clause is ours; values are parameters
        [*([] if market_ids is None else [int_array(sorted(market_ids))]), since, until, NEWS_KINDS_ARRAY],
    )
    for market_id, event_time in rows:
        times[market_id].append(event_time)
    return times


def decision_counts(
    *, fills_from: str, where: str, params: list, decision_window: timedelta, window: timedelta, by_day: bool
) -> list[tuple]:
    """Every trader's decisions among the fills `fills_from` / `where` select (a FROM clause naming
    trade_fill `f`, and its condition with `params`), grouped per market — and per UTC day of the
    decision with `by_day` — as rows (market_id, day or None, decisions, hits, first, last): fixed
    slots of `decision_window` per wallet, token and side; a hit is a decision followed by news
    within `window`; first and last are the earliest and latest decision times."""
    seconds = max(1, int(decision_window.total_seconds()))
    day = "(d.at AT TIME ZONE 'UTC')::date" if by_day else "NULL::date"
    return fast_rows(
        f"""
        WITH d AS (
            SELECT f.market_id, min(f.traded_at) AS at
            FROM {fills_from}
            WHERE {where}
            GROUP BY f.market_id, f.wallet_id, f.token_id, f.side, floor(extract(epoch FROM f.traded_at) / %s)
        )
        SELECT d.market_id, {day}, count(*),
               count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM offchain_event_market em JOIN offchain_event e ON e.id = em.event_id
                   WHERE em.market_id = d.market_id AND em.event_time > d.at AND em.event_time <= d.at + %s
                     AND e.kind = ANY(%s::text[]))),
               min(d.at), max(d.at)
        FROM d GROUP BY 1, 2
        """,  # noqa: S608 - the clauses are ours; values are parameters
        [*params, seconds, window, NEWS_KINDS_ARRAY],
    )


def market_baselines_compute(
    *, market_ids: list[int], since: datetime, until: datetime, decision_window: timedelta, window: timedelta
) -> dict[int, MarketBaseline]:
    """Every trader's decisions in each market since `since` (fixed slots of `decision_window` per
    wallet, token and side), how many were followed by news within `window`, and the share of the
    market's trading span lying within `window` before news. One grouped read of the markets'
    fills through the (market, traded_at) index: the whole window's fills, which
    `scoring.baselines.market_baselines` reads only for the days not sealed yet."""
    if not market_ids:
        return {}
    rows = decision_counts(
        fills_from="trade_fill f", where="f.market_id = ANY(%s::bigint[]) AND f.traded_at >= %s AND f.traded_at <= %s",
        params=[int_array(sorted(market_ids)), since, until], decision_window=decision_window, window=window,
        by_day=False,
    )
    news = news_times_for(market_ids=market_ids, since=since, until=until + window)
    return {
        market_id: MarketBaseline(
            decisions=decisions, hits=hits,
            time_share=time_share_before_news(news.get(market_id, []), start=first, end=last, window=window),
        )
        for market_id, _day, decisions, hits, first, last in rows
    }


def info_edge_payload(snapshot) -> dict:
    """The information-edge payload of a wallet snapshot (or of a wallet not computed yet: None):
    the contract keys plus the test's own, every one a number (0, p and q 1, without evidence)."""
    if snapshot is None:
        return {"mean_delta_minutes": 0.0, "stddev_minutes": 0.0, "samples": 0, "p_value": 1.0, "z_score": 0.0,
                "classification": "insufficient_data", "baseline_rate": 0.0, "wallet_rate": 0.0, "q_value": 1.0,
                "decisions": 0, "markets": 0}
    return {
        "mean_delta_minutes": snapshot.info_edge_mean_minutes, "stddev_minutes": snapshot.info_edge_stddev_minutes,
        "samples": snapshot.info_edge_samples, "p_value": snapshot.info_edge_p, "z_score": snapshot.info_edge_z,
        "classification": snapshot.info_edge_level, "baseline_rate": snapshot.info_edge_baseline_rate,
        "wallet_rate": snapshot.info_edge_wallet_rate, "q_value": snapshot.info_edge_q,
        "decisions": snapshot.info_edge_decisions, "markets": snapshot.info_edge_markets,
    }


def edge_ranking() -> list[int]:
    """Tested wallets, strongest evidence of trading ahead of news first: those more often before
    news than their markets (effect > 0) by q-value, then the rest. The test is two-sided, so a
    wallet significantly *less* often before news has a small q too; it is no edge and ranks last."""
    return list(
        WalletSnapshot.objects.filter(info_edge_tested=True)
        .annotate(ahead=Case(When(info_edge_effect__gt=0, then=Value(0)), default=Value(1)))
        .order_by("ahead", "info_edge_q", "-info_edge_effect", "wallet_id").values_list("wallet_id", flat=True)
    )


# --- Point-in-time scores ----------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreAsOf:
    wallet_id: int
    smart_score: object
    strategy_type: str
    pool_tier: str
    risk_level: str
    info_edge_level: str
    computed_at: datetime
    valid_as_of: datetime | None


SCORE_AS_OF_SQL = """
    SELECT q.at, q.wallet_id, h.smart_score, h.strategy_type, h.pool_tier, h.risk_level, h.info_edge_level,
           h.computed_at, h.valid_as_of
    FROM unnest(%s::bigint[], %s::timestamptz[]) AS q(wallet_id, at)
    CROSS JOIN LATERAL (
        SELECT smart_score, strategy_type, pool_tier, risk_level, info_edge_level, computed_at, valid_as_of
        FROM wallet_score_history h
        WHERE h.wallet_id = q.wallet_id AND h.computed_at <= q.at
        ORDER BY h.computed_at DESC, h.id DESC LIMIT 1
    ) h
"""


def scores_as_of(*, queries: list[tuple[int, datetime]]) -> dict[tuple[int, datetime], ScoreAsOf]:
    """Each wallet's score as it stood at the given moment: the newest history row computed at or
    before it (history is append-only and gains a row whenever a scored value changes). A wallet
    not scored yet by then has no entry — never the score it got later."""
    if not queries:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(SCORE_AS_OF_SQL, [[w for w, _ in queries], [at for _, at in queries]])
        rows = cursor.fetchall()
    return {(row[1], row[0]): ScoreAsOf(*row[1:]) for row in rows}


def score_as_of(*, wallet_id: int, at: datetime) -> ScoreAsOf | None:
    return scores_as_of(queries=[(wallet_id, at)]).get((wallet_id, at))


# --- Scorecard ---------------------------------------------------------------------------------

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class EdgeSummary:
    settled: int
    hit_rate: float | None
    mean_edge: float | None
    ci_low: float | None
    ci_high: float | None
    markets: int


def clustered_mean(values: list[tuple[int, float]]) -> tuple[float | None, float | None, float | None, int]:
    """Mean of the values with a 95 % interval whose standard error is clustered by market
    (signals about one market are not independent evidence): se² = G/(G−1) · Σ_g (Σ_{i∈g} (x_i − x̄))² / n².
    With one market the interval is undefined (None)."""
    n = len(values)
    if n == 0:
        return None, None, None, 0
    mean = math.fsum(v for _, v in values) / n
    sums: dict[int, float] = defaultdict(float)
    for cluster, value in values:
        sums[cluster] += value - mean
    clusters = len(sums)
    if clusters < 2:
        return mean, None, None, clusters
    variance = clusters / (clusters - 1) * math.fsum(s * s for s in sums.values()) / (n * n)
    half = Z_95 * math.sqrt(variance)
    return mean, mean - half, mean + half, clusters


def _summary(rows: list[tuple[int, float, float]]) -> EdgeSummary:
    """rows: (market_id, edge, settlement value of the side)."""
    mean, low, high, clusters = clustered_mean([(market, edge) for market, edge, _ in rows])
    hits = sum(1 for _, _, value in rows if value >= 1)
    return EdgeSummary(
        settled=len(rows), hit_rate=None if not rows else hits / len(rows),
        mean_edge=None if mean is None else round(mean, 6), ci_low=None if low is None else round(low, 6),
        ci_high=None if high is None else round(high, 6), markets=clusters,
    )


def signal_scorecard() -> list[dict]:
    """Per signal kind and per point-in-time label: count, settled count, hit rate (the implied side
    won), mean edge (settlement value − price at the signal) with a 95 % interval clustered by market,
    mean price move at +1 h and +24 h, and the same edge figures for the reverse control (the
    opposite side of the same market at the same moment)."""
    rows = fast_rows(
        """
        SELECT kind, label, market_id, price_at_signal, price_1h, price_24h, settlement_value,
               reverse_price_at_signal, reverse_settlement_value
        FROM signal_prediction ORDER BY kind, label, id
        """,
        [],
    )
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for row in rows:
        groups[(row[0], row[1])].append(row)
    card = []
    for (kind, label), items in sorted(groups.items()):
        settled = [r for r in items if r[6] is not None and r[3] is not None]
        forward = _summary([(r[2], float(r[6] - r[3]), float(r[6])) for r in settled])
        reverse = _summary([
            (r[2], float(r[8] - r[7]), float(r[8])) for r in settled if r[7] is not None and r[8] is not None
        ])
        moves_1h = [float(r[4] - r[3]) for r in items if r[4] is not None and r[3] is not None]
        moves_24h = [float(r[5] - r[3]) for r in items if r[5] is not None and r[3] is not None]
        card.append({
            "kind": kind, "label": label, "count": len(items),
            "settled": forward.settled, "markets": forward.markets, "hit_rate": forward.hit_rate,
            "mean_edge": forward.mean_edge, "edge_ci_low": forward.ci_low, "edge_ci_high": forward.ci_high,
            "mean_move_1h": round(math.fsum(moves_1h) / len(moves_1h), 6) if moves_1h else None,
            "mean_move_24h": round(math.fsum(moves_24h) / len(moves_24h), 6) if moves_24h else None,
            "reverse": {
                "settled": reverse.settled, "hit_rate": reverse.hit_rate, "mean_edge": reverse.mean_edge,
                "edge_ci_low": reverse.ci_low, "edge_ci_high": reverse.ci_high,
            },
        })
    return card
