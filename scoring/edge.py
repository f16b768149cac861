"""Information edge (ARCHITECTURE §8): does a wallet decide shortly before news more often than the
other traders of the same markets? Pure functions, no clock, no database.

Decisions
---------
The unit of evidence is a decision, not a fill: a wallet's fills in one market on one side (token and
BUY/SELL) belong to one decision while each follows the previous one within `decision_window`
(EDGE_DECISION_WINDOW_SECONDS). One order split into five fills, or the several fills of one
transaction, is one decision; its time is its first fill.

News
----
Off-chain events of kind `feed` or `manual` linked to the market. Market lifecycle events (closed,
resolved) are outcomes, not information, and are never news (the selector leaves them out).

The test
--------
For a decision at t in market m, Δt = t − (first news of m after t), in minutes, when that news
comes within the horizon (INFO_EDGE_HORIZON_MINUTES); the decision is a *hit* when it comes within
W minutes (EDGE_WINDOW_MINUTES). Decisions in markets that never had news cannot hit and say
nothing: they are left out. Every other decision counts, paired or not.

The baseline of market m is the share of the *other* traders' decisions in m that were hits
(the market's totals minus the wallet's own, from `market_edge_baseline`), shrunk towards the
share of m's trading time that lies within W minutes before one of its news items with
`BASELINE_PRIOR_DECISIONS` pseudo-decisions, so a market with few other traders still has an
honest, non-zero baseline:

    p_m = (hits_others + K · time_share_m) / (decisions_others + K),   K = 10, clamped to [0.001, 0.999]

With n decisions, k hits and p₀ = mean of p_m over the decisions (each decision weighted by its
market), k ~ Binomial(n, p₀) under the null. The p-value is the exact two-sided binomial one
(the probability of every count at most as likely as k; a normal approximation with continuity
correction above `EXACT_LIMIT` decisions). Averaging p_m makes the binomial variance at least the
true (Poisson-binomial) one, so the test is conservative. z = (k − n·p₀) / √(n·p₀·(1 − p₀)).
Effect size = wallet_rate − baseline_rate = k/n − p₀ (percentage points of decisions).

Labels (after Benjamini–Hochberg across every tested wallet, see `scoring.fdr`):
insufficient_data when n < EDGE_MIN_DECISIONS or fewer than EDGE_MIN_MARKETS markets hold a
decision followed by news within the horizon; processing_edge when q < 0.05 and effect ≥
EDGE_MIN_EFFECT; mild_edge when q < 0.20 and effect > 0; otherwise no_edge (including a wallet
significantly *less* often before news than its markets: the test is two-sided, the label is not).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

BASELINE_PRIOR_DECISIONS = 10.0
BASELINE_FLOOR = 0.001
EXACT_LIMIT = 3000
PROCESSING_Q = 0.05
MILD_Q = 0.20


@dataclass(frozen=True)
class EdgeRules:
    decision_window: timedelta = timedelta(minutes=5)
    window: timedelta = timedelta(minutes=60)
    horizon: timedelta = timedelta(hours=24)
    min_decisions: int = 8
    min_markets: int = 3
    min_effect: float = 0.2


@dataclass(frozen=True)
class Decision:
    market_id: int
    token_id: str
    side: str
    at: datetime
    first_fill: int  # index into the wallet's fills
    fills: int
    usdc: object  # Decimal cash of the decision's fills


@dataclass(frozen=True)
class PairedDecision:
    decision: Decision
    delta_minutes: float  # ≤ 0: the decision came before the news
    news_at: datetime


@dataclass(frozen=True)
class MarketBaseline:
    decisions: int
    hits: int
    time_share: float


@dataclass(frozen=True)
class EdgeTest:
    decisions: int
    markets: int
    hits: int
    wallet_rate: float
    baseline_rate: float
    effect: float
    p: float
    z: float
    samples: int
    mean_minutes: float
    stddev_minutes: float
    tested: bool
    paired: tuple[PairedDecision, ...]


def decisions_group(
    fills: Sequence, cash: Sequence, *, window: timedelta, indexes: Sequence[int] | None = None
) -> list[Decision]:
    """Group fills (sorted by time) into decisions: same market, token and side, each fill within
    `window` of the previous one of the group. `indexes` are the fills' positions in the wallet's
    full list when `fills` is a subset of it (`Decision.first_fill` refers to that list)."""
    open_groups: dict[tuple[int, str, str], list] = {}
    done: list[Decision] = []
    for position, fill in enumerate(fills):
        key = (fill.market_id, fill.token_id, fill.side)
        group = open_groups.get(key)
        if group is not None and fill.traded_at - group[1] <= window:
            group[1] = fill.traded_at
            group[3] += 1
            group[4] += cash[position]
            continue
        if group is not None:
            done.append(Decision(key[0], key[1], key[2], group[0], group[2], group[3], group[4]))
        index = position if indexes is None else indexes[position]
        open_groups[key] = [fill.traded_at, fill.traded_at, index, 1, cash[position]]
    for key, group in open_groups.items():
        done.append(Decision(key[0], key[1], key[2], group[0], group[2], group[3], group[4]))
    done.sort(key=lambda d: (d.at, d.first_fill))
    return done


def decision_slots(fills: Sequence, *, window: timedelta) -> dict[int, dict[tuple[str, str, int], datetime]]:
    """The wallet's decisions as `market_edge_baseline` counts them (fixed slots of `window`
    seconds per token and side, timed by their first fill), per market: what to subtract from
    the market's totals to leave the other traders'."""
    seconds = max(1, int(window.total_seconds()))
    slots: dict[int, dict[tuple[str, str, int], datetime]] = {}
    for fill in fills:
        key = (fill.token_id, fill.side, int(fill.traded_at.timestamp()) // seconds)
        market = slots.setdefault(fill.market_id, {})
        if key not in market:
            market[key] = fill.traded_at  # fills come sorted by time: the first is the earliest
    return slots


def time_share_before_news(news: Sequence[datetime], *, start: datetime, end: datetime, window: timedelta) -> float:
    """Share of [start, end] lying within `window` before some news item: where a decision placed
    at a uniformly random moment of the market's trading span would be a hit."""
    span = (end - start).total_seconds()
    if span <= 0 or not news:
        return 0.0
    covered = 0.0
    cursor = start
    for moment in news:
        lo = max(cursor, moment - window, start)
        hi = min(moment, end)
        if hi > lo:
            covered += (hi - lo).total_seconds()
        cursor = max(cursor, moment)
    return min(1.0, covered / span)


def binomial_two_sided(k: int, n: int, p: float) -> float:
    if n <= 0:
        return 1.0
    p = min(max(p, 1e-12), 1 - 1e-12)
    if n > EXACT_LIMIT:
        sd = math.sqrt(n * p * (1 - p))
        z = max(0.0, abs(k - n * p) - 0.5) / sd
        return min(1.0, math.erfc(z / math.sqrt(2)))
    log_p, log_q = math.log(p), math.log(1 - p)
    base = math.lgamma(n + 1)

    def log_pmf(i: int) -> float:
        return base - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q

    observed = log_pmf(k) + 1e-7  # ties within float noise count as "as likely"
    total = math.fsum(math.exp(value) for i in range(n + 1) if (value := log_pmf(i)) <= observed)
    return min(1.0, total)


# A wallet without a decision in a market that had news: nothing to test, numbers all zero.
NO_EDGE_EVIDENCE = EdgeTest(0, 0, 0, 0.0, 0.0, 0.0, 1.0, 0.0, 0, 0.0, 0.0, False, ())


def edge_test(
    decisions: Sequence[Decision],
    *,
    news: dict[int, list[datetime]],
    baselines: dict[int, MarketBaseline],
    own_slots: dict[int, dict[tuple[str, str, int], datetime]],
    rules: EdgeRules,
) -> EdgeTest:
    """The wallet's test against its markets' baselines (see the module docstring)."""
    window_minutes = rules.window.total_seconds() / 60
    n = hits = 0
    expected = 0.0
    paired: list[PairedDecision] = []
    paired_markets: set[int] = set()
    probability: dict[int, float] = {}
    for decision in decisions:
        times = news.get(decision.market_id)
        baseline = baselines.get(decision.market_id)
        if not times or baseline is None:
            continue
        p_m = probability.get(decision.market_id)
        if p_m is None:
            own = own_slots.get(decision.market_id, {})
            # The baseline may be older than the wallet's newest fills: never a negative count.
            others = max(0, baseline.decisions - len(own))
            own_hits = sum(1 for moment in own.values() if _is_hit(moment, times, rules))
            other_hits = max(0, min(others, baseline.hits - own_hits))
            p_m = (other_hits + BASELINE_PRIOR_DECISIONS * baseline.time_share) / (others + BASELINE_PRIOR_DECISIONS)
            p_m = min(1 - BASELINE_FLOOR, max(BASELINE_FLOOR, p_m))
            probability[decision.market_id] = p_m
        n += 1
        expected += p_m
        at = bisect.bisect_right(times, decision.at)
        if at < len(times) and times[at] - decision.at <= rules.horizon:
            delta = (decision.at - times[at]).total_seconds() / 60.0
            paired.append(PairedDecision(decision, delta, times[at]))
            paired_markets.add(decision.market_id)
            if -delta <= window_minutes:
                hits += 1
    if n == 0:
        return NO_EDGE_EVIDENCE
    baseline_rate = expected / n
    wallet_rate = hits / n
    p = binomial_two_sided(hits, n, baseline_rate)
    z = (hits - expected) / math.sqrt(n * baseline_rate * (1 - baseline_rate))
    deltas = [item.delta_minutes for item in paired]
    mean = math.fsum(deltas) / len(deltas) if deltas else 0.0
    stddev = math.sqrt(math.fsum((d - mean) ** 2 for d in deltas) / (len(deltas) - 1)) if len(deltas) > 1 else 0.0
    tested = n >= rules.min_decisions and len(paired_markets) >= rules.min_markets
    return EdgeTest(
        decisions=n, markets=len(paired_markets), hits=hits, wallet_rate=round(wallet_rate, 6),
        baseline_rate=round(baseline_rate, 6), effect=round(wallet_rate - baseline_rate, 6), p=p, z=round(z, 6),
        samples=len(paired), mean_minutes=round(mean, 6), stddev_minutes=round(stddev, 6), tested=tested,
        paired=tuple(paired),
    )


def _is_hit(moment: datetime, times: list[datetime], rules: EdgeRules) -> bool:
    at = bisect.bisect_right(times, moment)
    return at < len(times) and times[at] - moment <= rules.window


def edge_level(*, test: EdgeTest, q: float, rules: EdgeRules) -> str:
    if not test.tested:
        return "insufficient_data"
    return edge_level_from(q=q, effect=test.effect, min_effect=rules.min_effect)


def edge_level_from(*, q: float, effect: float, min_effect: float) -> str:
    if q < PROCESSING_Q and effect >= min_effect:
        return "processing_edge"
    if q < MILD_Q and effect > 0:
        return "mild_edge"
    return "no_edge"
