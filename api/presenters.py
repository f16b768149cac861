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
    reconciliation with Polymarket's own positions). `realized_pnl` stays Polymarket's basis.
    Numbers are numbers: a wallet without a ledger yet shows 0 and status `unknown`."""
    from marts.models import WalletLedgerSummary

    facts = {name: getattr(snapshot, name) for name in LAYER1_FROM_SNAPSHOT}
    ledger = WalletLedgerSummary.objects.filter(wallet_id=snapshot.wallet_id).first()
    zero = Decimal(0)
    facts.update(cash_pnl=zero, rewards=zero,
                 reconciliation={"status": "unknown", "difference": zero, "checked_at": None})
    if ledger is not None:
        facts.update(
            fees_paid=ledger.fees_paid, maker_rebates=ledger.maker_rebates, rewards=ledger.rewards,
            cash_pnl=ledger.cash_pnl,
            reconciliation={"status": ledger.reconciliation_status, "difference": ledger.reconciliation_difference,
                            "checked_at": ledger.reconciliation_checked_at},
        )
    return facts


def explanations(snapshot: WalletSnapshot) -> dict:
    edge = info_edge(snapshot)
    values = {
        "layer1": {
            "realized_pnl": float(snapshot.realized_pnl),
            "unrealized_pnl": float(snapshot.unrealized_pnl),
            "trading_pnl": float(snapshot.trading_pnl),
            "maker_rebates": float(snapshot.maker_rebates),
            "fees_paid": float(snapshot.fees_paid),
            "total_trades": snapshot.total_trades,
            "volume_30d": float(snapshot.volume_30d),
            "win_rate": None if snapshot.win_rate is None else float(snapshot.win_rate),
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
    layers = {
        layer: {name: {"value": values[layer][name], "explanation": text} for name, text in texts.items()}
        for layer, texts in EXPLANATIONS.items()
    }
    return {
        "wallet_id": snapshot.wallet_id,
        "address": snapshot.wallet.address,
        **layers,
        "disclosures": DISCLOSURES,
        "generated_at": timezone.now(),
    }
