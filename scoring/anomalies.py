"""Anomaly candidates of one wallet: rates and changes against its own baseline and the market.

Only recent activity (fills in the last `lookback`) can raise an alert, and each candidate names
what triggered it (`dedupe_key`), so recomputing the same facts proposes the same candidates and
the unique key absorbs them. The cooldown per (wallet, type) is applied by the caller against the
alerts already stored, comparing trade times (`observed_at`), not wall-clock insert times.

- large_position: a fill worth ≥ `large_factor` × the wallet's median fill of the 30 days before
  the lookback (at least `large_min_usdc`), and ≥ `liquidity_share` of the market's liquidity
  when the market reports one.
- trading_rate_spike: ≥ `spike_min_trades` fills in the lookback and ≥ `spike_factor` × the
  wallet's daily rate over the 30 days before (a wallet needs a week of history to have a rate).
- pnl_jump: total PnL moved by ≥ `pnl_jump_min_usdc` and by ≥ half its previous magnitude since
  the last computation (a change, never a level).
- fresh_wallet_large_trade: one of a wallet's first three fills, inside the lookback, worth ≥
  `fresh_min_usdc`.
- pre_event_timing: a fill ≥ max(`pre_event_min_usdc`, 3 × the wallet's median) placed less than
  `pre_event_minutes` before the first off-chain event of its market.
"""

from __future__ import annotations

import hashlib
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from marts.compute import MarketFacts, WalletMart

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


def anomalies_detect(
    *, mart: WalletMart, markets: dict[int, MarketFacts], previous_total_pnl: Decimal | None, now: datetime,
    rules: AnomalyRules,
) -> list[Candidate]:
    fills, cash = mart.fills, mart.cash
    if not fills:
        return []
    recent_start = now - rules.lookback
    baseline_start = recent_start - timedelta(days=30)
    baseline = [amount for fill, amount in zip(fills, cash, strict=True) if baseline_start <= fill.traded_at < recent_start]
    recent = [(i, fill) for i, fill in enumerate(fills) if fill.traded_at >= recent_start]
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

    total = mart.trading_pnl
    if previous_total_pnl is not None:
        change = total - previous_total_pnl
        if abs(change) >= rules.pnl_jump_min_usdc and abs(change) >= abs(previous_total_pnl) / 2:
            biggest = max(mart.positions, key=lambda p: (abs(p.realized_pnl + p.unrealized_pnl), p.token_id), default=None)
            digest = hashlib.sha256(f"{previous_total_pnl}->{total}".encode()).hexdigest()[:40]
            found.append(Candidate(
                wallet_id, "pnl_jump",
                _severity(abs(change) / rules.pnl_jump_min_usdc, medium=Decimal(3), high=Decimal(10)),
                biggest.market_id if biggest else None,
                {"before": _money(previous_total_pnl), "after": _money(total), "change": _money(change)},
                f"Total PnL moved {_money(change)} USDC since the last computation",
                f"pnl:{digest}", now,
            ))

    if mart.first_trade_at is not None and mart.first_trade_at >= recent_start:
        for i, fill in enumerate(fills[:3]):
            amount = cash[i]
            if amount >= rules.fresh_min_usdc:
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
    for sample in mart.edge_samples:
        fill = fills[sample.fill_index]
        amount = cash[sample.fill_index]
        if fill.traded_at < pre_event_start or not (-rules.pre_event_minutes <= sample.delta_minutes < 0) or amount < floor:
            continue
        minutes = -sample.delta_minutes
        severity = "high" if minutes <= 10 else ("medium" if minutes <= 30 else "low")
        found.append(Candidate(
            wallet_id, "pre_event_timing", severity, fill.market_id,
            {"fill": fill.idempotency_key, "usdc": _money(amount), "minutes_before_event": round(minutes, 2),
             "event_time": sample.event_time.isoformat()},
            f"{_money(amount)} USDC traded {minutes:.0f} minutes before news on this market",
            fill.idempotency_key, fill.traded_at,
        ))
    return found


def anomalies_apply_cooldown(
    *, candidates: list[Candidate], last_observed: dict[tuple[int, str], datetime], cooldown: timedelta
) -> list[Candidate]:
    """Keep a candidate only if its (wallet, type) had no alert within `cooldown` before it."""
    kept: list[Candidate] = []
    latest = dict(last_observed)
    for candidate in sorted(candidates, key=lambda c: (c.wallet_id, c.alert_type, c.observed_at, c.dedupe_key)):
        key = (candidate.wallet_id, candidate.alert_type)
        previous = latest.get(key)
        if previous is not None and candidate.observed_at < previous + cooldown:
            continue
        kept.append(candidate)
        latest[key] = candidate.observed_at
    return kept
