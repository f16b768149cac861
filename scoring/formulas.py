"""Scores and labels of a wallet, computed from its marts. Pure functions, no clock, no database.

Smart score (0–100)
-------------------
The previous backend ranked by fixed thresholds on raw win rate and PnL, so three lucky trades
topped the list. Here every component is shrunk by how much evidence backs it:

    L  = Wilson lower bound (z = 1.645, one-sided 95 %) of the win rate over resolved positions
         (0 when none). 3 wins out of 3 gives L ≈ 0.53, 60 of 100 gives L ≈ 0.52, 180 of 300 ≈ 0.55.
    R  = 0.5 + 0.5 · tanh(r / 0.2), with the shrunk ROI r = trading_pnl / (bought_usdc + V0),
         V0 = 1,000 USDC of imaginary break-even capital: $50 made on $10 is r ≈ 0.05, not 500 %.
         Where the wallet has a ledger, L and r take its figures instead (marts.ledger): resolved
         positions of known cost, losers never redeemed included, and the PnL and pre-fee cost of
         positions of known cost — shares bought before the known history are left out, never
         counted as a loss.
    E  = information edge: 1.0 processing_edge, 0.75 mild_edge, 0.5 otherwise.
    S  = stability / 100 (share of profitable days over 30 days, Laplace-smoothed).
    raw = 0.40·L + 0.35·R + 0.15·E + 0.10·S
    m  = resolved positions + 0.1 · trades          (evidence; trades alone are weak evidence)
    c  = m / (m + 20)                               (confidence, stored as `confidence`)
    smart_score = 100 · (c · raw + (1 − c) · 0.25)

A wallet with no evidence scores 25 (the prior); it can only move far from 25 with many resolved
positions. Three lucky wins with a 500 % return score ≈ 32; 300 resolved positions at 70 % wins and
25 % ROI score ≈ 74.

Labels (first rule that matches; thresholds are the constants below)
----------------------------------------------------------------------
Book features from the wallet's positions: `two_sided_share` = share of its markets in which it both
bought and sold one token; `paired_share` = 2 · Σ_m min(shares bought of each outcome) / all shares
bought (how much of its buying holds both sides of a market); `pair_cost` = the average price paid
for one share of each outcome in those markets (< 1: a locked-in profit at settlement);
`paired_markets` = how many markets it bought both outcomes of; `held_share` = shares it holds (or
held at settlement) / shares it bought (a market maker sells what it buys: it holds little);
`sold_share` = shares sold / shares bought (an arbitrageur holds its pairs to settlement).

- unknown: fewer than 5 trades.
- market_maker: ≥ 200 trades over ≥ 10 markets, sell volume within ±30 % of buy volume, both sides
  of the book in ≥ 70 % of its markets, |trading PnL| / volume < 3 % (it earns the spread, not
  bets), it holds < 25 % of the shares it bought (a busy random trader on both sides keeps most
  of them: measured on the emulator, 0.07 for the planted market maker, ≥ 0.9 for the busiest
  random traders), and — once a source reports maker rebates — rebates ≥ 20 % of its income.
- arbitrage: in ≥ 3 markets it bought both outcomes, it sold ≤ 25 % of what it bought, and ≥ 50 %
  of the shares it bought pair up across both outcomes of a market for less than 1 in total, or
  ≥ 80 % pair up whatever they cost (it holds both sides). A random trader who once bought both
  outcomes of a market is not one.
- event_trader: information edge `processing_edge` or `mild_edge` (after the FDR control across
  every tested wallet: before the first pass of scoring.fdr, the edge a batch's own q gives is
  shown but labels nothing and scores as unknown).
- lucky: realised PnL (sells and settlements) above max(50 USDC, 5 % of what it bought, two
  standard deviations of what chance pays on the shares it realised) while one position brings
  > 60 % of the gains or confidence < 0.5. The chance term (`realized_pnl_sigma`): a share bought
  at p pays 1 with probability p at fair prices, so its payout varies by sqrt(p(1 − p)); the
  wallet's realised shares (sold or settled) of each position, at the position's average buy
  price, add up in variance (a sale at a fair price risks no more than holding to settlement).
  Two of those is a result rare for one wallet but expected among hundreds without an edge,
  which is what `lucky` says; 5 % of what it bought is inside a random trader's spread (measured
  on the emulator's 4-hour run: 63 of 393 random traders were lucky at that floor alone, 15.8 %,
  the share a one-sigma rule would give). The floors keep a PnL hovering around zero from
  flipping it; an open position's mark is left out because a paper gain is not yet luck
  (marked PnL moves with every price tick, and made the label follow the market: measured on the
  emulator, most lucky ↔ noise changes were re-marks of open positions).
- quant: ≥ 100 trades over ≥ 20 markets, L ≥ 0.5 and positive PnL (broad, repeatable).
- noise: everything else (random traders land here).

A computed label, tier or risk level replaces the settled one only after it held for
SCORING_HOLD_SECONDS (scoring.services, hysteresis); leaving `unknown` settles at once. A strategy
label also settles at once when it wins by a clear margin: its margin (`strategy_margins`) is the
smallest relative distance by which the inputs clear the thresholds of its rule — (value −
threshold) / threshold for "at least", (threshold − value) / threshold for "at most" (the sell/buy
band: (0.3 − |sell/buy − 1|) / 0.3; event_trader: (0.20 − q) / 0.20 on the edge's FDR q-value) —
and `noise`, the label of wallets no rule fits, has minus the largest margin of the other rules
(how far the nearest rule is from fitting). A margin ≥ SCORING_LABEL_MARGIN (0.5: every threshold
cleared by half its value again) is clear; a label computed next to a threshold waits.
`event_trader` never settles by margin: its q comes from the FDR control over every tested wallet
and moves with them, so it settles only once it has held for SCORING_EDGE_HOLD_SECONDS (two FDR
passes by default).

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
See scoring.edge: decisions against the markets' own baseline, two-sided, FDR-controlled.
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
class ScoreInputs:
    total_trades: int
    markets_traded: int
    resolved_positions: int
    winning_positions: int
    trading_pnl: Decimal
    realized_pnl: Decimal
    # One standard deviation of what chance pays on the realised shares (`realized_pnl_sigma`).
    realized_pnl_sigma: float
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
    two_sided_share: float = 0.0
    paired_share: float = 0.0
    pair_cost: float = 0.0
    paired_markets: int = 0
    held_share: float = 0.0
    sold_share: float = 0.0
    maker_rebates: Decimal = ZERO
    info_edge_q: float = 1.0
    # The ROI's terms from the wallet ledger (known-cost positions); None: trading_pnl / bought_usdc.
    roi_pnl: Decimal | None = None
    roi_capital: Decimal | None = None


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
    # How clearly the strategy label wins (see the module docstring).
    strategy_margin: float = 0.0


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
    roi_pnl, roi_capital = (inputs.trading_pnl, inputs.bought_usdc) if inputs.roi_pnl is None \
        else (inputs.roi_pnl, inputs.roi_capital or ZERO)
    shrunk_roi = float(roi_pnl / (roi_capital + PRIOR_CAPITAL))
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
    margin = strategy_margins(inputs, confidence=confidence, lower=lower).get(strategy, 0.0)
    pool_tier = _pool_tier(inputs, smart_score=smart_score)
    risk = _risk(inputs, confidence=confidence)
    suitable_for, suggested = advice(pool_tier=pool_tier, risk_level=risk)
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
        strategy_margin=round(margin, 6),
    )


MM_MIN_TRADES = 200
MM_MIN_MARKETS = 10
MM_SELL_BUY_BAND = (Decimal("0.7"), Decimal("1.3"))
MM_MIN_TWO_SIDED = 0.7
MM_MAX_PNL_TO_VOLUME = Decimal("0.03")
MM_MIN_REBATE_SHARE = Decimal("0.2")
MM_MAX_HELD_SHARE = 0.25
ARB_MIN_PAIRED_CHEAP = 0.5
ARB_MIN_PAIRED_ANY = 0.8
ARB_MIN_PAIRED_MARKETS = 3
ARB_MAX_SOLD_SHARE = 0.25
LUCKY_MIN_PNL = Decimal(50)
LUCKY_MIN_PNL_SHARE = Decimal("0.05")
LUCKY_MIN_SIGMAS = 2
EDGE_MILD_Q = 0.20  # scoring.edge.MILD_Q (formulas stay free of the edge module)


@dataclass(frozen=True)
class BookFeatures:
    two_sided_share: float
    paired_share: float
    pair_cost: float
    paired_markets: int = 0
    held_share: float = 0.0
    sold_share: float = 0.0


def book_features(positions) -> BookFeatures:
    """Two-sidedness and outcome pairing of a wallet's book (positions of marts.compute)."""
    if not positions:
        return BookFeatures(0.0, 0.0, 0.0)
    by_market: dict[int, list] = {}
    two_sided_markets: set[int] = set()
    bought_total = held = sold = ZERO
    for position in positions:
        by_market.setdefault(position.market_id, []).append(position)
        held += max(position.shares, ZERO) + position.settled_shares
        sold += position.sold_shares
        if position.bought_shares > 0:
            bought_total += position.bought_shares
            if position.sold_shares > 0:
                two_sided_markets.add(position.market_id)
    paired = ZERO
    pair_units = ZERO
    pair_cost_weighted = ZERO
    paired_markets = 0
    for market_positions in by_market.values():
        if len(market_positions) < 2:
            continue  # one outcome traded: nothing to pair (most markets of most wallets)
        bought = [p for p in market_positions if p.bought_shares > 0]
        if len(bought) < 2 or len({p.outcome_index for p in bought if p.outcome_index is not None}) < 2:
            continue
        pairs = min(p.bought_shares for p in bought)
        paired_markets += 1
        paired += pairs * len(bought)
        pair_units += pairs
        pair_cost_weighted += pairs * sum((p.bought_usdc / p.bought_shares for p in bought), ZERO)
    paired_share = float(paired / bought_total) if bought_total > 0 else 0.0
    pair_cost = float(pair_cost_weighted / pair_units) if pair_units > 0 else 0.0
    held_share = float(held / bought_total) if bought_total > 0 else 0.0
    sold_share = float(sold / bought_total) if bought_total > 0 else 0.0
    return BookFeatures(len(two_sided_markets) / len(by_market), min(1.0, paired_share), pair_cost, paired_markets,
                        held_share, sold_share)


def advice(*, pool_tier: str, risk_level: str) -> tuple[str, str]:
    """(suitable_for, suggested_position) of a tier and risk level."""
    if pool_tier == "observation":
        return "watch_only", "0%"
    suitable_for = {"low": "conservative", "medium": "balanced", "high": "aggressive"}[risk_level]
    if risk_level == "high":
        return suitable_for, "1-2%"
    if pool_tier == "star" and risk_level == "low":
        return suitable_for, "5-10%"
    return suitable_for, "2-5%"


def _strategy(inputs: ScoreInputs, *, confidence: float, lower: float) -> str:
    if inputs.total_trades < 5:
        return "unknown"
    volume = inputs.buy_volume + inputs.sell_volume
    low, high = MM_SELL_BUY_BAND
    if (
        inputs.total_trades >= MM_MIN_TRADES
        and inputs.markets_traded >= MM_MIN_MARKETS
        and inputs.buy_volume > 0
        and low <= inputs.sell_volume / inputs.buy_volume <= high
        and inputs.two_sided_share >= MM_MIN_TWO_SIDED
        and abs(inputs.trading_pnl) / volume < MM_MAX_PNL_TO_VOLUME
        and inputs.held_share < MM_MAX_HELD_SHARE
        and (inputs.maker_rebates <= 0
             or inputs.maker_rebates / (abs(inputs.trading_pnl) + inputs.maker_rebates) >= MM_MIN_REBATE_SHARE)
    ):
        return "market_maker"
    if inputs.paired_markets >= ARB_MIN_PAIRED_MARKETS and inputs.sold_share <= ARB_MAX_SOLD_SHARE and (
        (inputs.paired_share >= ARB_MIN_PAIRED_CHEAP and 0 < inputs.pair_cost < 1) or inputs.paired_share >= ARB_MIN_PAIRED_ANY
    ):
        return "arbitrage"
    if inputs.info_edge_label in {"processing_edge", "mild_edge"}:
        return "event_trader"
    lucky_floor = _lucky_floor(inputs)
    if inputs.realized_pnl > lucky_floor and (confidence < 0.5 or inputs.top_gain_share > Decimal("0.6")):
        return "lucky"
    if inputs.total_trades >= 100 and inputs.markets_traded >= 20 and lower >= 0.5 and inputs.trading_pnl > 0:
        return "quant"
    return "noise"


def _lucky_floor(inputs: ScoreInputs) -> Decimal:
    chance = Decimal(repr(LUCKY_MIN_SIGMAS * inputs.realized_pnl_sigma))
    return max(LUCKY_MIN_PNL, inputs.bought_usdc * LUCKY_MIN_PNL_SHARE, chance)


def realized_pnl_sigma(positions) -> float:
    """One standard deviation of the realised PnL that fair prices would give the wallet's
    realised shares (sold or settled) by chance: sqrt(sum of shares² · p(1 − p)) with p each
    position's average buy price. Shares it never bought (a split's, or history not yet in) have
    no price to judge by and add nothing."""
    variance = 0.0
    for position in positions:
        if position.bought_shares <= 0:
            continue
        price = float(position.bought_usdc / position.bought_shares)
        realised = float(min(position.sold_shares + position.settled_shares, position.bought_shares))
        variance += realised * realised * max(0.0, price * (1.0 - price))
    return math.sqrt(variance)


def _at_least(value: float, threshold: float) -> float:
    return (value - threshold) / threshold


def _at_most(value: float, threshold: float) -> float:
    return (threshold - value) / threshold


def strategy_margins(inputs: ScoreInputs, *, confidence: float, lower: float) -> dict[str, float]:
    """Each strategy rule's relative margin: ≥ 0 when its inputs clear every threshold of the rule,
    the smallest clearance over its conditions (negative: how far the rule misses)."""
    volume = float(inputs.buy_volume + inputs.sell_volume)
    buy = float(inputs.buy_volume)
    pnl = float(inputs.trading_pnl)
    low, high = (float(bound) for bound in MM_SELL_BUY_BAND)
    band = (high - low) / 2
    margins = {"unknown": _at_most(inputs.total_trades, 5)}
    margins["market_maker"] = min(
        _at_least(inputs.total_trades, MM_MIN_TRADES),
        _at_least(inputs.markets_traded, MM_MIN_MARKETS),
        (band - abs(float(inputs.sell_volume) / buy - 1)) / band if buy > 0 else -1.0,
        _at_least(inputs.two_sided_share, MM_MIN_TWO_SIDED),
        _at_most(abs(pnl) / volume, float(MM_MAX_PNL_TO_VOLUME)) if volume > 0 else -1.0,
        _at_most(inputs.held_share, MM_MAX_HELD_SHARE),
    )
    cheap = 0 < inputs.pair_cost < 1
    margins["arbitrage"] = min(
        max(_at_least(inputs.paired_share, ARB_MIN_PAIRED_CHEAP) if cheap else -1.0,
            _at_least(inputs.paired_share, ARB_MIN_PAIRED_ANY)),
        _at_least(inputs.paired_markets, ARB_MIN_PAIRED_MARKETS),
        _at_most(inputs.sold_share, ARB_MAX_SOLD_SHARE),
    )
    if inputs.info_edge_label in {"processing_edge", "mild_edge"}:
        margins["event_trader"] = _at_most(inputs.info_edge_q, EDGE_MILD_Q)
    else:
        margins["event_trader"] = min(0.0, -_at_least(inputs.info_edge_q, EDGE_MILD_Q))
    lucky_floor = float(_lucky_floor(inputs))
    margins["lucky"] = min(_at_least(float(inputs.realized_pnl), lucky_floor), max(_at_most(confidence, 0.5),
                                                            _at_least(float(inputs.top_gain_share), 0.6)))
    margins["quant"] = min(_at_least(inputs.total_trades, 100), _at_least(inputs.markets_traded, 20),
                           _at_least(lower, 0.5), 1.0 if pnl > 0 else -1.0)
    margins["noise"] = -max(margins.values())
    return margins


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
