"""Anomaly candidates of one wallet: rates and changes against its own baseline and the market.

Only facts that were news when they arrived can raise an alert: a fill is *live* when it was stored
within `live_window` (ANOMALY_LIVE_WINDOW_SECONDS) of its trade time. Fills that arrive by a
backfill or a history fetch update the marts but never fire an alert — loading a wallet's history is
not the wallet doing something now. Only recent activity (the last `lookback`) counts, and each
candidate names what triggered it (`dedupe_key`), so recomputing the same facts proposes the same
candidates and the unique key absorbs them. The cooldown per (wallet, type, market) is applied by
the caller against the alerts already stored, comparing trade times (`observed_at`), not
wall-clock insert times.

- large_position: a fill worth ≥ `large_factor` × the wallet's median fill of the 30 days before
  the lookback (at least `large_min_usdc`), and ≥ `liquidity_share` of the market's liquidity
  when the market reports one.
- trading_rate_spike: ≥ `spike_min_trades` live fills in the lookback and ≥ `spike_factor` × the
  wallet's daily rate over the 30 days before (a wallet needs a week of history to have a rate).
- pnl_jump: realised PnL over the lookback (live sells, and settlements of markets resolved in it)
  of ≥ `pnl_jump_min_usdc` and ≥ `spike_factor` × the wallet's mean absolute daily realised PnL over
  the 30 days before — a change over a window against changes over windows, on one basis
  (realised, net of fees); never a level, never an unrealised mark against a stored total.
- fresh_wallet_large_trade: one of a wallet's first three fills, live, inside the lookback, worth ≥
  `fresh_min_usdc`.
- pre_event_timing: a live decision (scoring.edge) ≥ max(`pre_event_min_usdc`, 3 × the wallet's
  median fill) placed less than `pre_event_minutes` before the first news of its market.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from marts.compute import MarketFacts, WalletMart
from scoring.edge import PairedDecision

ZERO = Decimal(0)


@dataclass(frozen=True)
class AnomalyRules:
    lookback: timedelta = timedelta(hours=24)
    cooldown: timedelta = timedelta(hours=6)
    large_min_usdc: Decimal = Decimal(1000)
    large_factor: Decimal = Decimal(5)
    liquidity_share: Decimal = Decimal("0.02")
    spike_min_trades: int = 20
    spike_factor: Decimal = Decimal(5)
    pnl_jump_min_usdc: Decimal = Decimal(1000)
    fresh_min_usdc: Decimal = Decimal(5000)
    pre_event_minutes: float = 60.0
    pre_event_min_usdc: Decimal = Decimal(500)
    live_window: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class Candidate:
    wallet_id: int
    alert_type: str
    severity: str
    market_id: int | None
    evidence: dict
    description: str
    dedupe_key: str
    observed_at: datetime


def _money(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def _severity(ratio: Decimal, *, medium: Decimal, high: Decimal) -> str:
    if ratio >= high:
        return "high"
    if ratio >= medium:
        return "medium"
    return "low"


def is_live(fill, window: timedelta) -> bool:
    """Stored within `window` of its trade time: news when it arrived, not history fetched later."""
    return fill.ingested_at - fill.traded_at <= window


def anomalies_detect(
    *, mart: WalletMart, markets: dict[int, MarketFacts], paired: Sequence[PairedDecision], now: datetime,
    rules: AnomalyRules,
) -> list[Candidate]:
    fills, cash = mart.fills, mart.cash
    if not fills:
        return []
    recent_start = now - rules.lookback
    baseline_start = recent_start - timedelta(days=30)
    baseline = [amount for fill, amount in zip(fills, cash, strict=True) if baseline_start <= fill.traded_at < recent_start]
    live = rules.live_window
    recent = [(i, fill) for i, fill in enumerate(fills) if fill.traded_at >= recent_start and is_live(fill, live)]
    median = Decimal(statistics.median(baseline)) if baseline else None
    found: list[Candidate] = []
    wallet_id = mart.wallet_id

    if median is not None and len(baseline) >= 5 and median > 0:
        for i, fill in recent:
            amount = cash[i]
            ratio = amount / median
            if amount < rules.large_min_usdc or ratio < rules.large_factor:
                continue
            liquidity = markets[fill.market_id].liquidity if fill.market_id in markets else ZERO
            share = amount / liquidity if liquidity > 0 else None
            if share is not None and share < rules.liquidity_share:
                continue
            severity = _severity(ratio, medium=Decimal(10), high=Decimal(20))
            if share is not None and share >= Decimal("0.10"):
                severity = "high"
            found.append(Candidate(
                wallet_id, "large_position", severity, fill.market_id,
                {"fill": fill.idempotency_key, "usdc": _money(amount), "wallet_median_30d_usdc": _money(median),
                 "times_median": _money(ratio), "market_liquidity": _money(liquidity),
                 "share_of_liquidity": None if share is None else format(share.quantize(Decimal("0.0001")), "f")},
                f"{fill.side} of {_money(amount)} USDC is {_money(ratio)}× this wallet's 30-day median fill",
                fill.idempotency_key, fill.traded_at,
            ))

    if mart.first_trade_at is not None and mart.first_trade_at <= now - timedelta(days=7) and recent:
        recent_count = len(recent)
        daily_rate = Decimal(len(baseline)) / Decimal(30)
        ratio = Decimal(recent_count) / max(daily_rate, Decimal(1))
        if recent_count >= rules.spike_min_trades and ratio >= rules.spike_factor:
            last = recent[-1][1]
            counts: dict[int, int] = {}
            for _i, fill in recent:
                counts[fill.market_id] = counts.get(fill.market_id, 0) + 1
            busiest = min(counts, key=lambda market_id: (-counts[market_id], market_id))
            found.append(Candidate(
                wallet_id, "trading_rate_spike", _severity(ratio, medium=Decimal(10), high=Decimal(20)), busiest,
                {"trades_in_lookback": recent_count, "baseline_trades_per_day": _money(daily_rate),
                 "times_baseline": _money(ratio), "lookback_hours": rules.lookback.total_seconds() / 3600},
                f"{recent_count} trades in {rules.lookback.total_seconds() / 3600:g}h, {_money(ratio)}× its usual daily rate",
                f"rate:{last.traded_at.date().isoformat()}", last.traded_at,
            ))

    found += _pnl_jump(mart=mart, recent_start=recent_start, baseline_start=baseline_start, rules=rules)

    if mart.first_trade_at is not None and mart.first_trade_at >= recent_start:
        for i, fill in enumerate(fills[:3]):
            amount = cash[i]
            if amount >= rules.fresh_min_usdc and is_live(fill, live):
                found.append(Candidate(
                    wallet_id, "fresh_wallet_large_trade",
                    _severity(amount / rules.fresh_min_usdc, medium=Decimal(2), high=Decimal(5)), fill.market_id,
                    {"fill": fill.idempotency_key, "usdc": _money(amount), "fill_number": i + 1,
                     "first_trade_at": mart.first_trade_at.isoformat()},
                    f"New wallet's trade #{i + 1} is {_money(amount)} USDC", fill.idempotency_key, fill.traded_at,
                ))

    floor = rules.pre_event_min_usdc
    if median is not None:
        floor = max(floor, median * 3)
    pre_event_start = recent_start - timedelta(minutes=rules.pre_event_minutes)
    for item in paired:
        decision = item.decision
        fill = fills[decision.first_fill]
        amount = decision.usdc
        if (fill.traded_at < pre_event_start or not is_live(fill, live)
                or not (-rules.pre_event_minutes <= item.delta_minutes < 0) or amount < floor):
            continue
        minutes = -item.delta_minutes
        severity = "high" if minutes <= 10 else ("medium" if minutes <= 30 else "low")
        found.append(Candidate(
            wallet_id, "pre_event_timing", severity, fill.market_id,
            {"fill": fill.idempotency_key, "usdc": _money(amount), "fills": decision.fills,
             "minutes_before_event": round(minutes, 2), "event_time": item.news_at.isoformat()},
            f"{_money(amount)} USDC traded {minutes:.0f} minutes before news on this market",
            fill.idempotency_key, fill.traded_at,
        ))
    return found


def _pnl_jump(*, mart: WalletMart, recent_start: datetime, baseline_start: datetime, rules: AnomalyRules) -> list[Candidate]:
    if not mart.realisations or mart.realisations[-1].at < recent_start:
        return []  # nothing realised in the window (most wallets of a batch)
    fills_by_key = {fill.idempotency_key: fill for fill in mart.fills}
    market_of_token = {position.token_id: position.market_id for position in mart.positions}
    change = ZERO
    before = ZERO
    by_market: dict[int, Decimal] = {}
    keys: list[str] = []
    last_at = None
    for realisation in mart.realisations:
        if realisation.at < recent_start:
            before += realisation.pnl
            continue
        if realisation.is_trade:
            fill = fills_by_key.get(realisation.order_key)
            if fill is None or not is_live(fill, rules.live_window):
                continue
            market_id = fill.market_id
        else:
            market_id = market_of_token.get(realisation.order_key.removeprefix("~settle:"))
        change += realisation.pnl
        keys.append(realisation.order_key)
        last_at = realisation.at
        if market_id is not None:
            by_market[market_id] = by_market.get(market_id, ZERO) + realisation.pnl
    if last_at is None or abs(change) < rules.pnl_jump_min_usdc:
        return []
    days = [d.realized_pnl for day, d in mart.daily.items() if baseline_start.date() <= day < recent_start.date()]
    typical = sum((abs(value) for value in days), ZERO) / Decimal(30)
    if typical > 0 and abs(change) < rules.spike_factor * typical:
        return []
    market_id = min(by_market, key=lambda m: (-abs(by_market[m]), m)) if by_market else None
    digest = hashlib.sha256("|".join(keys).encode()).hexdigest()[:40]
    return [Candidate(
        mart.wallet_id, "pnl_jump", _severity(abs(change) / rules.pnl_jump_min_usdc, medium=Decimal(3), high=Decimal(10)),
        market_id,
        {"before": _money(before), "after": _money(before + change), "change": _money(change),
         "window_hours": rules.lookback.total_seconds() / 3600,
         "baseline_daily_abs_usdc": _money(typical)},
        f"Realised PnL moved {_money(change)} USDC in {rules.lookback.total_seconds() / 3600:g}h",
        f"pnl:{digest}", last_at,
    )]


def anomalies_apply_cooldown(
    *, candidates: list[Candidate], last_observed: dict[tuple[int, str, int | None], datetime], cooldown: timedelta
) -> list[Candidate]:
    """Keep a candidate only if its (wallet, type, market) had no alert within `cooldown` before it."""
    kept: list[Candidate] = []
    latest = dict(last_observed)
    for candidate in sorted(candidates, key=lambda c: (c.wallet_id, c.alert_type, c.observed_at, c.dedupe_key)):
        key = (candidate.wallet_id, candidate.alert_type, candidate.market_id)
        previous = latest.get(key)
        if previous is not None and candidate.observed_at < previous + cooldown:
            continue
        kept.append(candidate)
        latest[key] = candidate.observed_at
    return kept
