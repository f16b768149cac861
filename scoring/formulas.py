"""Scores and labels of a wallet, computed from its marts. Pure functions, no clock, no database.

Smart score (0–100)
-------------------
The previous backend ranked by fixed thresholds on raw win rate and PnL, so three lucky trades
topped the list. Here every component is shrunk by how much evidence backs it:

    L  = Wilson lower bound (z = 1.645, one-sided 95 %) of the win rate over resolved positions
         (0 when none). 3 wins out of 3 gives L ≈ 0.53, 60 of 100 gives L ≈ 0.52, 180 of 300 ≈ 0.55.
    R  = 0.5 + 0.5 · tanh(r / 0.2), with the shrunk ROI r = trading_pnl / (bought_usdc + V0),
         V0 = 1,000 USDC of imaginary break-even capital: $50 made on $10 is r ≈ 0.05, not 500 %.
    E  = information edge: 1.0 processing_edge, 0.75 mild_edge, 0.5 otherwise.
    S  = stability / 100 (share of profitable days over 30 days, Laplace-smoothed).
    raw = 0.40·L + 0.35·R + 0.15·E + 0.10·S
    m  = resolved positions + 0.1 · trades          (evidence; trades alone are weak evidence)
    c  = m / (m + 20)                               (confidence, stored as `confidence`)
    smart_score = 100 · (c · raw + (1 − c) · 0.25)

A wallet with no evidence scores 25 (the prior); it can only move far from 25 with many resolved
positions. Three lucky wins with a 500 % return score ≈ 32; 300 resolved positions at 70 % wins and
25 % ROI score ≈ 74.

Labels (first rule that matches)
--------------------------------
- unknown: fewer than 5 trades.
- market_maker: ≥ 200 trades, ≥ 20 trades per market on average, and sell volume within ±30 % of
  buy volume (both sides of the book, round trips rather than directional bets).
- event_trader: information edge `processing_edge` or `mild_edge`.
- lucky: positive PnL but confidence < 0.5, or one position brings > 60 % of all gains.
- quant: ≥ 100 trades over ≥ 20 markets, L ≥ 0.5 and positive PnL (broad, repeatable).
- noise: everything else.

Tiers, risk and advice
----------------------
- pool_tier: star when score ≥ 70, ≥ 30 resolved positions and PnL > 0; strategy when score ≥ 50
  and ≥ 20 trades; otherwise observation.
- risk_level: high when confidence < 0.3, the 7-day drawdown exceeds 25 % of 30-day volume, or one
  open position holds > 50 % of the open cost; low when drawdown < 5 %, concentration < 20 % and
  confidence ≥ 0.6; medium otherwise.
- suitable_for: watch_only (observation tier), else conservative / balanced / aggressive by risk.
- suggested_position: 0 % (observation), 5-10 % (star, low risk), 2-5 % (low or medium risk),
  1-2 % (high risk).
- momentum: this week's realised PnL against the weekly pace of the 23 days before it; heating or
  cooling when the difference exceeds max(50 USDC, 10 % of the pace), cooling also when a wallet
  active in the last 30 days made no trade in 7.

Information edge
----------------
Δt (minutes) = trade time − time of the first off-chain event for the market at or after the
trade, within the horizon; each paired fill is one sample. With n samples, mean μ and sample
standard deviation s: z = μ / (s / √n), p = erfc(|z| / √2) (two-sided). Labels: insufficient_data
when n < 5; processing_edge when p < 0.05 and μ ≤ −30; mild_edge when p < 0.10 and μ < 0;
otherwise no_edge. When every Δt is equal (s = 0) the mean is certain: z is undefined (stored
as null) and p = 0 (μ ≠ 0) or 1 (μ = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)
WILSON_Z = 1.645
PRIOR_CAPITAL = Decimal(1000)
ROI_SCALE = 0.2
EVIDENCE_HALF = 20.0
PRIOR_SCORE = 0.25
WEIGHTS = {"win": 0.40, "roi": 0.35, "edge": 0.15, "stability": 0.10}
EDGE_VALUE = {"processing_edge": 1.0, "mild_edge": 0.75}


@dataclass(frozen=True)
class InfoEdge:
    samples: int
    mean_minutes: float | None
    stddev_minutes: float | None
    z: float | None
    p: float | None
    label: str


@dataclass(frozen=True)
class ScoreInputs:
    total_trades: int
    markets_traded: int
    resolved_positions: int
    winning_positions: int
    trading_pnl: Decimal
    bought_usdc: Decimal
    buy_volume: Decimal
    sell_volume: Decimal
    volume_30d: Decimal
    trades_7d: int
    trades_30d: int
    pnl_7d: Decimal
    pnl_30d: Decimal
    max_drawdown_7d: Decimal
    stability_score: Decimal
    open_concentration: Decimal
    top_gain_share: Decimal
    info_edge_label: str


@dataclass(frozen=True)
class Score:
    smart_score: Decimal
    confidence: Decimal
    strategy_type: str
    pool_tier: str
    risk_level: str
    suitable_for: str
    suggested_position: str
    momentum: str
    status_7d: str


def info_edge_compute(deltas: list[float]) -> InfoEdge:
    n = len(deltas)
    if n == 0:
        return InfoEdge(0, None, None, None, None, "insufficient_data")
    mean = math.fsum(deltas) / n
    stddev = math.sqrt(math.fsum((d - mean) ** 2 for d in deltas) / (n - 1)) if n > 1 else 0.0
    if stddev > 0:
        z = mean / (stddev / math.sqrt(n))
        p = math.erfc(abs(z) / math.sqrt(2))
    else:
        z = None
        p = 0.0 if mean != 0 else 1.0
    if n < 5:
        label = "insufficient_data"
    elif p < 0.05 and mean <= -30:
        label = "processing_edge"
    elif p < 0.10 and mean < 0:
        label = "mild_edge"
    else:
        label = "no_edge"
    return InfoEdge(n, round(mean, 6), round(stddev, 6), None if z is None else round(z, 6), round(p, 12), label)


def wilson_lower_bound(wins: int, n: int, z: float = WILSON_Z) -> float:
    if n <= 0:
        return 0.0
    phat = wins / n
    z2 = z * z
    centre = phat + z2 / (2 * n)
    margin = z * math.sqrt(phat * (1 - phat) / n + z2 / (4 * n * n))
    return max(0.0, (centre - margin) / (1 + z2 / n))


def score_compute(inputs: ScoreInputs) -> Score:
    lower = wilson_lower_bound(inputs.winning_positions, inputs.resolved_positions)
    shrunk_roi = float(inputs.trading_pnl / (inputs.bought_usdc + PRIOR_CAPITAL))
    roi_term = 0.5 + 0.5 * math.tanh(shrunk_roi / ROI_SCALE)
    edge_term = EDGE_VALUE.get(inputs.info_edge_label, 0.5)
    stability_term = float(inputs.stability_score) / 100.0
    raw = (
        WEIGHTS["win"] * lower
        + WEIGHTS["roi"] * roi_term
        + WEIGHTS["edge"] * edge_term
        + WEIGHTS["stability"] * stability_term
    )
    evidence = inputs.resolved_positions + 0.1 * inputs.total_trades
    confidence = evidence / (evidence + EVIDENCE_HALF)
    score = 100.0 * (confidence * raw + (1 - confidence) * PRIOR_SCORE)
    smart_score = Decimal(repr(round(min(100.0, max(0.0, score)), 2))).quantize(Decimal("0.01"))
    confidence_decimal = Decimal(repr(round(confidence, 6)))

    strategy = _strategy(inputs, confidence=confidence, lower=lower)
    pool_tier = _pool_tier(inputs, smart_score=smart_score)
    risk = _risk(inputs, confidence=confidence)
    if pool_tier == "observation":
        suitable_for, suggested = "watch_only", "0%"
    else:
        suitable_for = {"low": "conservative", "medium": "balanced", "high": "aggressive"}[risk]
        if risk == "high":
            suggested = "1-2%"
        elif pool_tier == "star" and risk == "low":
            suggested = "5-10%"
        else:
            suggested = "2-5%"
    return Score(
        smart_score=smart_score,
        confidence=confidence_decimal,
        strategy_type=strategy,
        pool_tier=pool_tier,
        risk_level=risk,
        suitable_for=suitable_for,
        suggested_position=suggested,
        momentum=_momentum(inputs),
        status_7d=_status_7d(inputs),
    )


def _strategy(inputs: ScoreInputs, *, confidence: float, lower: float) -> str:
    if inputs.total_trades < 5:
        return "unknown"
    per_market = inputs.total_trades / max(inputs.markets_traded, 1)
    if (
        inputs.total_trades >= 200
        and per_market >= 20
        and inputs.buy_volume > 0
        and Decimal("0.7") <= inputs.sell_volume / inputs.buy_volume <= Decimal("1.3")
    ):
        return "market_maker"
    if inputs.info_edge_label in {"processing_edge", "mild_edge"}:
        return "event_trader"
    if inputs.trading_pnl > 0 and (confidence < 0.5 or inputs.top_gain_share > Decimal("0.6")):
        return "lucky"
    if inputs.total_trades >= 100 and inputs.markets_traded >= 20 and lower >= 0.5 and inputs.trading_pnl > 0:
        return "quant"
    return "noise"


def _pool_tier(inputs: ScoreInputs, *, smart_score: Decimal) -> str:
    if smart_score >= 70 and inputs.resolved_positions >= 30 and inputs.trading_pnl > 0:
        return "star"
    if smart_score >= 50 and inputs.total_trades >= 20:
        return "strategy"
    return "observation"


def _risk(inputs: ScoreInputs, *, confidence: float) -> str:
    capital = max(inputs.volume_30d, Decimal(1))
    drawdown_ratio = inputs.max_drawdown_7d / capital
    if confidence < 0.3 or drawdown_ratio > Decimal("0.25") or inputs.open_concentration > Decimal("0.5"):
        return "high"
    if drawdown_ratio < Decimal("0.05") and inputs.open_concentration < Decimal("0.2") and confidence >= 0.6:
        return "low"
    return "medium"


def _momentum(inputs: ScoreInputs) -> str:
    if inputs.trades_7d == 0:
        return "cooling" if inputs.trades_30d > 0 else "stable"
    pace = (inputs.pnl_30d - inputs.pnl_7d) * Decimal(7) / Decimal(23)
    threshold = max(Decimal(50), abs(pace) / 10)
    difference = inputs.pnl_7d - pace
    if difference > threshold:
        return "heating"
    if difference < -threshold:
        return "cooling"
    return "stable"


def _status_7d(inputs: ScoreInputs) -> str:
    if inputs.trades_7d == 0:
        return "inactive"
    if inputs.pnl_7d > 0:
        return "profitable"
    if inputs.pnl_7d < 0:
        return "losing"
    return "flat"
