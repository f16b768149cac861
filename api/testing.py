"""A small, fully populated serving world for the API tests, written with the ORM only.

Snapshots, feed events, anomalies and reports are written directly (as the compute path would
leave them), so the API tests do not depend on the compute code, and no fill is needed at all:
the API must answer without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from ingest.models import IngestRun, Market, OutcomeToken, RunStatus, Wallet
from marts.models import WalletComputeState
from scoring.models import AiReport, Anomaly, FeedEvent, WalletScoreHistory, WalletSnapshot


@dataclass
class ApiWorld:
    star: Wallet
    quant: Wallet
    event_trader: Wallet
    newcomer: Wallet
    uncomputed: Wallet
    open_market: Market
    closed_market: Market
    resolved_market: Market
    anomaly: Anomaly
    report: AiReport
    pnl_event: FeedEvent


def _snapshot(wallet: Wallet, **values) -> WalletSnapshot:
    now = timezone.now()
    defaults = {
        "total_trades": 150,
        "markets_traded": 25,
        "volume_total": Decimal("50000"),
        "volume_30d": Decimal("12000"),
        "fees_paid": Decimal("40"),
        "realized_pnl": Decimal("2500.5"),
        "unrealized_pnl": Decimal("120.25"),
        "trading_pnl": Decimal("2580.75"),
        "total_pnl": Decimal("2580.75"),
        "roi": Decimal("0.05"),
        "win_rate": Decimal("0.61"),
        "resolved_positions": 40,
        "winning_positions": 24,
        "open_positions": 3,
        "trades_7d": 12,
        "pnl_7d": Decimal("300"),
        "pnl_30d": Decimal("900"),
        "realized_pnl_24h": Decimal("0"),
        "max_drawdown_7d": Decimal("150"),
        "stability_score": Decimal("62.5"),
        "first_trade_at": now - timedelta(days=90),
        "last_trade_at": now - timedelta(hours=2),
        "smart_score": Decimal("55"),
        "confidence": Decimal("0.7"),
        "strategy_type": "quant",
        "pool_tier": "strategy",
        "risk_level": "medium",
        "suitable_for": "balanced",
        "suggested_position": "2-5%",
        "momentum": "stable",
        "status_7d": "profitable",
        "info_edge_level": "no_edge",
        "info_edge_mean_minutes": 12.5,
        "info_edge_stddev_minutes": 30.0,
        "info_edge_samples": 18,
        "info_edge_z": 1.77,
        "info_edge_p": 0.077,
        "scored_at": now - timedelta(hours=1),
        "last_analyzed_at": now - timedelta(minutes=5),
    }
    defaults.update(values)
    return WalletSnapshot.objects.create(wallet=wallet, **defaults)


def api_world_seed() -> ApiWorld:
    now = timezone.now()
    star = Wallet.objects.create(
        address="0x" + "a1" * 20, pseudonym="Alpha-Star", tracked=True, first_trade_at=now - timedelta(days=90), last_trade_at=now
    )
    quant = Wallet.objects.create(address="0x" + "b2" * 20, pseudonym="beta-quant", first_trade_at=now - timedelta(days=60))
    event_trader = Wallet.objects.create(address="0x" + "c3" * 20, pseudonym="", first_trade_at=now - timedelta(days=30))
    newcomer = Wallet.objects.create(address="0x" + "d4" * 20, pseudonym="newbie")
    uncomputed = Wallet.objects.create(address="0x" + "e5" * 20)

    _snapshot(
        star,
        total_trades=400,
        realized_pnl=Decimal("18000"),
        trading_pnl=Decimal("18500"),
        total_pnl=Decimal("18500"),
        realized_pnl_24h=Decimal("1200"),
        smart_score=Decimal("78.5"),
        strategy_type="quant",
        pool_tier="star",
        risk_level="low",
        suitable_for="conservative",
        suggested_position="5-10%",
        momentum="heating",
        has_ai_report=True,
        nl_summary="A broad, repeatable trader.",
        ai_model_id="template",
        ai_confidence=Decimal("0.82"),
        potential_reached_at=now - timedelta(hours=3),
    )
    _snapshot(quant, total_trades=150, realized_pnl=Decimal("2500.5"), smart_score=Decimal("55"))
    _snapshot(
        event_trader,
        total_trades=120,
        realized_pnl=Decimal("800"),
        realized_pnl_24h=Decimal("400"),
        smart_score=Decimal("55"),
        strategy_type="event_trader",
        info_edge_level="processing_edge",
        info_edge_mean_minutes=-95.0,
        info_edge_p=0.01,
        risk_level="high",
        suitable_for="aggressive",
        suggested_position="1-2%",
        potential_reached_at=now - timedelta(days=3),
    )
    _snapshot(
        newcomer,
        total_trades=3,
        realized_pnl=Decimal("-20"),
        smart_score=Decimal("25"),
        strategy_type="unknown",
        pool_tier="observation",
        suitable_for="watch_only",
        suggested_position="0%",
        info_edge_level="insufficient_data",
    )
    WalletScoreHistory.objects.create(
        wallet=star,
        smart_score=Decimal("70"),
        confidence=Decimal("0.6"),
        strategy_type="quant",
        pool_tier="strategy",
        risk_level="low",
        momentum="stable",
        info_edge_level="no_edge",
        scored_at=now - timedelta(days=2),
    )
    for wallet in (star, quant, event_trader, newcomer):
        WalletComputeState.objects.create(wallet=wallet, last_computed_at=now - timedelta(minutes=5), fills=10)

    open_market = Market.objects.create(
        condition_id="0x" + "01" * 32,
        question="Will it rain in Paris?",
        slug="rain-paris",
        category="Weather",
        outcomes=["Yes", "No"],
        outcome_prices=["0.4", "0.6"],
        volume=Decimal("1000"),
        liquidity=Decimal("300"),
        metadata_status="fetched",
    )
    for index, (outcome, price) in enumerate([("Yes", "0.4"), ("No", "0.6")]):
        OutcomeToken.objects.create(
            token_id=f"10{index + 1}", market=open_market, outcome_index=index, outcome=outcome, latest_price=Decimal(price)
        )
    closed_market = Market.objects.create(
        condition_id="0x" + "02" * 32,
        question="Election winner?",
        slug="election",
        category="Politics",
        volume=Decimal("90000"),
        liquidity=Decimal("5000"),
        closed=True,
        metadata_status="fetched",
    )
    resolved_market = Market.objects.create(
        condition_id="0x" + "03" * 32,
        question="Final score over 3.5?",
        slug="final-score",
        category="Sports",
        outcomes=["Yes", "No"],
        outcome_prices=["1", "0"],
        volume=Decimal("5000"),
        liquidity=Decimal("0"),
        closed=True,
        winner_index=0,
        resolved_at=now - timedelta(days=1),
        metadata_status="fetched",
    )

    anomaly = Anomaly.objects.create(
        wallet=star,
        market=open_market,
        alert_type="large_position",
        severity="high",
        evidence={"usdc": "25000", "median_usdc": "900"},
        description="A 25,000 USDC fill, 28× the wallet's median.",
        dedupe_key="fill:abc",
        observed_at=now - timedelta(hours=1),
    )
    Anomaly.objects.create(
        wallet=quant,
        alert_type="trading_rate_spike",
        severity="medium",
        evidence={"trades": 40},
        description="40 fills in 24 h, 8× the usual rate.",
        dedupe_key="day:1",
        observed_at=now - timedelta(hours=5),
        acknowledged=True,
        acknowledged_at=now - timedelta(hours=4),
    )
    report = AiReport.objects.create(
        wallet=star,
        model_id="template",
        report={"sections": ["facts"]},
        nl_summary="A broad, repeatable trader.",
        risk_warnings=["Past performance does not predict results."],
        confidence=Decimal("0.82"),
        input_digest="0" * 64,
        created_at=now - timedelta(hours=2),
    )
    pnl_event = FeedEvent.objects.create(
        wallet=star,
        event_type="pnl_jump",
        event_time=now - timedelta(hours=1),
        reason_code="pnl_up",
        payload={"before": 10000, "after": 18500, "reason_code": "pnl_up"},
        action_required=True,
        suggestion="Review the new position.",
        suggestion_zh="请查看新仓位。",
        dedupe_key="pnl:1",
    )
    FeedEvent.objects.create(
        wallet=star,
        event_type="potential_reached",
        event_time=now - timedelta(hours=3),
        reason_code="threshold",
        payload={"before": None, "after": {"total_trades": 400}, "reason_code": "threshold"},
        dedupe_key="potential",
    )
    FeedEvent.objects.create(
        wallet=event_trader,
        event_type="strategy_change",
        event_time=now - timedelta(hours=2),
        reason_code="edge_found",
        payload={"before": "quant", "after": "event_trader", "reason_code": "edge_found"},
        dedupe_key="strategy:1",
    )
    IngestRun.objects.create(
        job_name="ingest.data_api.trades", status=RunStatus.SUCCEEDED, ended_at=now, stats_json={"inserted": 10}
    )
    IngestRun.objects.create(job_name="ingest.gamma.markets", status=RunStatus.FAILED, ended_at=now, error_text="timeout")
    return ApiWorld(
        star=star,
        quant=quant,
        event_trader=event_trader,
        newcomer=newcomer,
        uncomputed=uncomputed,
        open_market=open_market,
        closed_market=closed_market,
        resolved_market=resolved_market,
        anomaly=anomaly,
        report=report,
        pnl_event=pnl_event,
    )


def throttle_rates_set(settings, *, per_second: float = 100_000.0, burst: int = 100_000, per_hour: int = 0) -> None:
    """Set the API's per-client rate limit through pytest-django's `settings` fixture (read per
    request, so the change applies at once)."""
    settings.API_RATE_PER_SECOND = per_second
    settings.API_RATE_BURST = burst
    settings.API_RATE_PER_HOUR = per_hour
