"""Words the API writes around the numbers: summaries, reasons, recommendations, explanations.

Pure functions of a wallet's snapshot, so a card reads the same on every request and in every
language the frontend shows (English and Chinese).
"""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from api.envelope import DISCLOSURES, DISCLOSURES_ZH
from ingest.models import Wallet
from scoring.models import InfoEdgeLevel, WalletSnapshot

SUITABLE_FOR_ZH = {"watch_only": "仅观察", "conservative": "稳健型", "balanced": "平衡型", "aggressive": "进取型"}
RISK_ZH = {"low": "低", "medium": "中", "high": "高"}
MOMENTUM_ZH = {"heating": "升温", "stable": "平稳", "cooling": "降温"}


def snapshot_or_default(wallet: Wallet, snapshot: WalletSnapshot | None) -> WalletSnapshot:
    """A wallet seen in trades but not computed yet reads as the model defaults, never invented
    values; its timestamps are null so the frontend can tell it apart."""
    if snapshot is not None:
        return snapshot
    empty = WalletSnapshot(wallet=wallet)
    empty.scored_at = None
    empty.last_analyzed_at = None
    return empty


def computed_at(snapshot: WalletSnapshot):
    """When the wallet's figures were last computed; before the first computation, when its
    record last changed (cards show a time, never null)."""
    return snapshot.last_analyzed_at or snapshot.wallet.updated_at


def info_edge(snapshot: WalletSnapshot) -> dict:
    """The information-edge figures as numbers, whatever the scoring layer stored.

    Without samples (or with a statistic missing) there is nothing to measure: Δt, spread and z
    read 0 and the label is `insufficient_data`. The p-value reads 1 then, not 0: a p-value of 0
    would claim the strongest possible evidence of an edge.
    """
    values = {
        "mean_delta_minutes": snapshot.info_edge_mean_minutes,
        "stddev_minutes": snapshot.info_edge_stddev_minutes,
        "z_score": snapshot.info_edge_z,
        "p_value": snapshot.info_edge_p,
    }
    samples = int(snapshot.info_edge_samples or 0)
    measured = samples > 0 and all(value is not None for value in values.values())
    label = snapshot.info_edge_level if measured else InfoEdgeLevel.INSUFFICIENT_DATA
    numbers = {name: float(value) if value is not None else 0.0 for name, value in values.items()}
    if snapshot.info_edge_p is None or samples == 0:
        numbers["p_value"] = 1.0
    if samples == 0:
        numbers.update(mean_delta_minutes=0.0, stddev_minutes=0.0, z_score=0.0)
    return {"wallet_id": snapshot.wallet_id, **numbers, "samples": samples, "label": label}


def percent(ratio: float) -> str:
    return f"{ratio * 100:.0f}%"


def return_range(returns: list[float]) -> str:
    """A pack's expected return for display: "15%-30%", or one figure when the members agree."""
    low, high = percent(min(returns)), percent(max(returns))
    return low if low == high else f"{low}-{high}"


def drawdown_bound(ratio: float) -> str:
    return f"<{percent(ratio)}"


def _usdc(value: Decimal) -> str:
    return f"{value:+,.2f} USDC"


def wallet_summary(snapshot: WalletSnapshot) -> str:
    return (
        f"{snapshot.total_trades} trades, realised {_usdc(snapshot.realized_pnl)}, "
        f"{snapshot.strategy_type.replace('_', ' ')}, score {snapshot.smart_score} ({snapshot.pool_tier} tier)"
    )


def recommend_reason(snapshot: WalletSnapshot, *, list_name: str) -> str:
    if list_name == "top_ai_confidence":
        confidence = float(snapshot.ai_confidence or 0)
        return (
            f"AI report confidence {confidence:.0%} on a {snapshot.strategy_type.replace('_', ' ')} wallet "
            f"with score {snapshot.smart_score} over {snapshot.total_trades} trades"
        )
    return (
        f"Realised {_usdc(snapshot.realized_pnl_24h)} in the last 24 h; score {snapshot.smart_score} "
        f"({snapshot.pool_tier} tier), info edge {snapshot.info_edge_level.replace('_', ' ')}"
    )


def ai_summary(snapshot: WalletSnapshot) -> tuple[str, str]:
    """The AI report's summary when there is one, else a plain statement of the facts."""
    if snapshot.has_ai_report and snapshot.nl_summary:
        return snapshot.nl_summary, "ai_report"
    return wallet_summary(snapshot), "fallback"


def decision_card(snapshot: WalletSnapshot) -> dict:
    if snapshot.suitable_for == "watch_only":
        recommendation = "Watch only: there is not enough evidence yet to follow this wallet."
        recommendation_zh = "仅观察：证据尚不充分，暂不建议跟随该钱包。"
    else:
        recommendation = (
            f"Suitable for {snapshot.suitable_for} followers; keep each position within {snapshot.suggested_position} "
            f"of your capital. Risk is {snapshot.risk_level}, momentum {snapshot.momentum}."
        )
        recommendation_zh = (
            f"适合{SUITABLE_FOR_ZH.get(snapshot.suitable_for, snapshot.suitable_for)}跟随者；"
            f"单笔仓位建议不超过资金的 {snapshot.suggested_position}。"
            f"风险{RISK_ZH.get(snapshot.risk_level, snapshot.risk_level)}，"
            f"近期势头{MOMENTUM_ZH.get(snapshot.momentum, snapshot.momentum)}。"
        )
    return {
        "wallet_id": snapshot.wallet_id,
        "pool_tier": snapshot.pool_tier,
        "suitable_for": snapshot.suitable_for,
        "risk_level": snapshot.risk_level,
        "suggested_position": snapshot.suggested_position,
        "momentum": snapshot.momentum,
        "status_7d": snapshot.status_7d,
        "recommendation": recommendation,
        "recommendation_zh": recommendation_zh,
        "disclaimer": " ".join(DISCLOSURES),
        "disclaimer_zh": "".join(DISCLOSURES_ZH),
        "last_updated": computed_at(snapshot),
    }


EXPLANATIONS = {
    "layer1": {
        "realized_pnl": "Profit locked in by sells and by settlements of resolved markets (winner 1, loser 0, "
        "void 0.5), against the average cost of each position.",
        "unrealized_pnl": "Open positions marked at the latest price, against their average cost.",
        "trading_pnl": "Realised plus unrealised PnL, net of fees.",
        "maker_rebates": "Rebates paid to the wallet for providing liquidity; 0 until a source reports them.",
        "fees_paid": "Trading fees paid on every fill.",
        "total_trades": "Fills of this wallet as maker or taker.",
        "volume_30d": "USDC traded in the last 30 days.",
        "win_rate": "Share of resolved positions that made money, losers never redeemed included.",
        "cash_pnl": "Cash basis: realised and settled PnL after fees, plus maker rebates and rewards as income.",
        "rewards": "Liquidity rewards paid to the wallet.",
        "reconciliation": "Arbitra's Polymarket-basis realised PnL and position sizes against Polymarket's own "
        "/v2/positions, and its after-fee realised PnL, fees, maker rebates and rewards against Polymarket's "
        "profile card (/v2/user-stats, `totals`): reconciled within 1 % or 0.01 USDC, drift, or unknown.",
    },
    "layer2": {
        "smart_score": "0-100. Win rate (Wilson lower bound), shrunk ROI, information edge and stability, "
        "pulled towards 25 when there is little evidence.",
        "confidence": "How much evidence backs the score: resolved positions plus a tenth of the trades.",
        "strategy_type": "lucky, market_maker, noise, event_trader, quant or unknown, from documented rules.",
        "pool_tier": "star, strategy or observation, from the score, the evidence and the PnL.",
        "risk_level": "From confidence, 7-day drawdown against 30-day volume and open-position concentration.",
        "momentum": "This week's realised PnL against the weekly pace of the 23 days before.",
    },
    "layer3": {
        "mean_delta_minutes": "Mean of trade time minus the time the market's next off-chain event became public; "
        "negative means the wallet traded before the news.",
        "samples": "Trades paired with a later off-chain event within the horizon.",
        "p_value": "Two-sided p-value that the mean Δt differs from zero.",
        "label": "insufficient_data (< 5 samples), processing_edge (p < 0.05 and mean ≤ -30 min), "
        "mild_edge (p < 0.10 and mean < 0), otherwise no_edge.",
    },
}


LAYER1_FROM_SNAPSHOT = (
    "realized_pnl", "unrealized_pnl", "trading_pnl", "maker_rebates", "total_pnl", "fees_paid", "total_trades",
    "volume_30d", "volume_total", "markets_traded", "win_rate", "roi", "resolved_positions", "open_positions",
    "first_trade_at", "last_trade_at",
)


def layer1_facts(snapshot: WalletSnapshot) -> dict:
    """The profile's layer-1 facts: the snapshot's, with the wallet ledger's where it has one
    (`fees_paid`, `maker_rebates`, `rewards` and `cash_pnl` from the ledger rows, and the
    reconciliation with Polymarket's own positions, with `totals` against its profile card,
    /v2/user-stats, as a key beside the contract's). `realized_pnl` stays Polymarket's basis.
    Numbers are numbers: a wallet without a ledger yet shows 0 and status `unknown`."""
    from marts.models import WalletLedgerSummary

    facts = {name: getattr(snapshot, name) for name in LAYER1_FROM_SNAPSHOT}
    ledger = WalletLedgerSummary.objects.filter(wallet_id=snapshot.wallet_id).first()
    zero = Decimal(0)
    facts.update(cash_pnl=zero, rewards=zero,
                 reconciliation={"status": "unknown", "difference": zero, "checked_at": None,
                                 "totals": _totals_reconciliation(None)})
    if ledger is not None:
        facts.update(
            fees_paid=ledger.fees_paid, maker_rebates=ledger.maker_rebates, rewards=ledger.rewards,
            cash_pnl=ledger.cash_pnl,
            reconciliation={"status": ledger.reconciliation_status, "difference": ledger.reconciliation_difference,
                            "checked_at": ledger.reconciliation_checked_at,
                            "totals": _totals_reconciliation(ledger)},
        )
    return facts


def _totals_reconciliation(ledger) -> dict:
    """The ledger's totals against Polymarket's profile card: ours − theirs, numbers always."""
    if ledger is None:
        zero = Decimal(0)
        return {"status": "unavailable", "realized_pnl_difference": zero, "fees_difference": zero,
                "maker_rebates_difference": zero, "rewards_difference": zero, "observed_at": None}
    return {"status": ledger.totals_status, "realized_pnl_difference": ledger.totals_realized_difference,
            "fees_difference": ledger.totals_fees_difference,
            "maker_rebates_difference": ledger.totals_maker_rebates_difference,
            "rewards_difference": ledger.totals_rewards_difference, "observed_at": ledger.totals_observed_at}


def _number(value) -> float | None:
    return None if value is None else float(value)


def _short(condition_id: str | None, outcome_index: int | None) -> str:
    market = f"{condition_id[:10]}…" if condition_id else "an unknown market"
    return f"outcome {outcome_index} of {market}" if outcome_index is not None else market


def _rows_text(rows_by_kind: dict[str, int]) -> str:
    listed = ", ".join(f"{rows} {kind}" for kind, rows in sorted(rows_by_kind.items()))
    return f"{sum(rows_by_kind.values())} ledger rows ({listed})" if rows_by_kind else "no ledger rows"


def _more(shown: int, total: int) -> str:
    return f" and {total - shown} more" if total > shown else ""


def _ledger_explained(facts: dict, ledger, sources) -> dict:
    """Explanations of the ledger's numbers, each with its sources: the ledger rows it adds up
    (landed /v2/activity rows, per kind), the resolution payout of each settled position, the
    price and time each open position is marked at."""
    rows = sources.rows_by_kind
    settled = [
        {"condition_id": p["condition_id"], "token_id": p["token_id"], "outcome_index": p["outcome_index"],
         "status": p["status"], "shares": _number(p["shares"]), "avg_price": _number(p["avg_price"]),
         "payout": _number(p["settlement_price"]), "settlement_pnl": _number(p["settlement_pnl"]),
         "cost_basis_known": p["cost_basis_known"]}
        for p in sources.settled
    ]
    marked = [
        {"condition_id": p["condition_id"], "token_id": p["token_id"], "outcome_index": p["outcome_index"],
         "shares": _number(p["shares"]), "avg_price": _number(p["avg_price"]), "mark_price": _number(p["mark_price"]),
         "marked_at": p["marked_at"].isoformat() if p["marked_at"] else None,
         "unrealized_pnl": _number(p["unrealized_pnl"])}
        for p in sources.marked
    ]
    settled_text = "; ".join(
        f"{_short(p['condition_id'], p['outcome_index'])} paid {p['payout']:g} on {p['shares']:g} shares "
        f"held at {p['avg_price']:g}" for p in settled[:3]
    )
    marked_text = "; ".join(
        f"{_short(p['condition_id'], p['outcome_index'])}: {p['shares']:g} shares at {p['mark_price']:g} "
        f"(latest price read {p['marked_at']})" for p in marked[:3]
    )
    return {
        "realized_pnl": (
            f" The wallet ledger (Polymarket basis, pre-fee) counts {float(ledger.realized_pnl):g} realised over "
            f"{_rows_text(rows)} and {float(ledger.settlement_pnl):g} settled on {sources.settled_count} positions "
            f"at their resolution payout" + (f": {settled_text}{_more(3, sources.settled_count)}." if settled else "."),
            {"ledger_rows": rows, "ledger_realized_pnl": float(ledger.realized_pnl),
             "ledger_settlement_pnl": float(ledger.settlement_pnl), "settled": settled,
             "settled_positions": sources.settled_count},
        ),
        "unrealized_pnl": (
            f" Ledger: {sources.marked_count} open positions marked"
            + (f": {marked_text}{_more(3, sources.marked_count)}." if marked else "."),
            {"marked": marked, "marked_positions": sources.marked_count},
        ),
        "maker_rebates": (
            f" From {rows.get('maker_rebate', 0)} MAKER_REBATE rows of the wallet ledger.",
            {"ledger_rows": {"maker_rebate": rows.get("maker_rebate", 0)}},
        ),
        "fees_paid": (
            f" From {rows.get('trade', 0)} TRADE rows of the wallet ledger: usdc_size minus size × price of each "
            "taker fill.",
            {"ledger_rows": {"trade": rows.get("trade", 0)}},
        ),
        "win_rate": (
            f" From the wallet ledger: {ledger.winning_positions} of {ledger.resolved_positions} resolved positions "
            f"of known cost made money ({sources.unredeemed_losers} losers never redeemed included); "
            f"{ledger.unknown_cost_positions} positions whose cost basis is unknown (shares from before the "
            "known history) are left out.",
            {"resolved_positions": ledger.resolved_positions, "winning_positions": ledger.winning_positions,
             "unredeemed_losers": sources.unredeemed_losers, "unknown_cost_positions": ledger.unknown_cost_positions,
             "settled": settled},
        ),
        "cash_pnl": (
            f" Over {_rows_text(rows)}: fees {float(ledger.fees_paid):g} paid, maker rebates "
            f"{float(ledger.maker_rebates):g} and rewards {float(ledger.rewards):g} received.",
            {"ledger_rows": rows, "fees_paid": float(ledger.fees_paid),
             "maker_rebates": float(ledger.maker_rebates), "rewards": float(ledger.rewards)},
        ),
        "rewards": (
            f" From {rows.get('reward', 0)} REWARD rows of the wallet ledger.",
            {"ledger_rows": {"reward": rows.get("reward", 0)}},
        ),
        "reconciliation": (
            f" Compared over {ledger.reconciliation_positions} of Polymarket's positions: realised PnL differs by "
            f"{float(ledger.reconciliation_difference):g} USDC, sizes by "
            f"{float(ledger.reconciliation_size_difference):g} shares. Against Polymarket's profile card "
            f"(/v2/user-stats): {ledger.totals_status}, after-fee realised PnL differs by "
            f"{float(ledger.totals_realized_difference):g}, fees by {float(ledger.totals_fees_difference):g}, maker "
            f"rebates by {float(ledger.totals_maker_rebates_difference):g}, rewards by "
            f"{float(ledger.totals_rewards_difference):g} USDC.",
            {"positions_compared": ledger.reconciliation_positions,
             "difference": float(ledger.reconciliation_difference),
             "size_difference": float(ledger.reconciliation_size_difference),
             "checked_at": facts["reconciliation"]["checked_at"],
             "totals": {name: value if name in ("status", "observed_at") else float(value)
                        for name, value in facts["reconciliation"]["totals"].items()}},
        ),
    }


def explanations(snapshot: WalletSnapshot) -> dict:
    """Each number of the three layers with what it means; the wallet ledger's numbers (and those
    it feeds) also say where they come from, in words and as `sources`."""
    from marts.ledger_selectors import ledger_sources_for
    from marts.models import WalletLedgerSummary

    edge = info_edge(snapshot)
    facts = layer1_facts(snapshot)
    reconciliation = dict(facts["reconciliation"])
    checked_at = reconciliation["checked_at"]
    reconciliation.update(difference=float(reconciliation["difference"]),
                          checked_at=checked_at.isoformat() if checked_at else None)
    facts["reconciliation"] = reconciliation
    values = {
        "layer1": {
            "realized_pnl": float(snapshot.realized_pnl),
            "unrealized_pnl": float(snapshot.unrealized_pnl),
            "trading_pnl": float(snapshot.trading_pnl),
            "maker_rebates": float(facts["maker_rebates"]),
            "fees_paid": float(facts["fees_paid"]),
            "total_trades": snapshot.total_trades,
            "volume_30d": float(snapshot.volume_30d),
            "win_rate": None if snapshot.win_rate is None else float(snapshot.win_rate),
            "cash_pnl": float(facts["cash_pnl"]),
            "rewards": float(facts["rewards"]),
            "reconciliation": reconciliation["status"],
        },
        "layer2": {
            "smart_score": float(snapshot.smart_score),
            "confidence": float(snapshot.confidence),
            "strategy_type": snapshot.strategy_type,
            "pool_tier": snapshot.pool_tier,
            "risk_level": snapshot.risk_level,
            "momentum": snapshot.momentum,
        },
        "layer3": {name: edge[name] for name in ("mean_delta_minutes", "samples", "p_value", "label")},
    }
    ledger = WalletLedgerSummary.objects.filter(wallet_id=snapshot.wallet_id).first() if snapshot.wallet_id else None
    explained = {} if ledger is None else _ledger_explained(facts, ledger, ledger_sources_for(wallet_id=ledger.pk))
    no_ledger = " No wallet ledger yet: 0 until the wallet's activity is read."
    for name in ("cash_pnl", "rewards"):
        explained.setdefault(name, (no_ledger, None))
    layers = {
        layer: {
            name: {"value": values[layer][name], "explanation": text + explained.get(name, ("", None))[0],
                   "sources": explained.get(name, ("", None))[1]}
            for name, text in texts.items()
        }
        for layer, texts in EXPLANATIONS.items()
    }
    return {
        "wallet_id": snapshot.wallet_id,
        "address": snapshot.wallet.address,
        **layers,
        "disclosures": DISCLOSURES,
        "generated_at": timezone.now(),
    }
