"""Scores, the latest-snapshot row per wallet, anomalies, feed events and AI reports.

`WalletSnapshot` is what the API reads: one row per wallet with every headline number it sorts or
filters on, written in the same transaction as the score. `WalletScoreHistory` gains a row only
when a scored value changes (the previous backend appended one per wallet per hour and its
leaderboard showed wallets twice).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils import timezone

from ingest.models import MONEY, Market, Wallet
from marts.models import RATIO

ZERO = Decimal(0)
SCORE = {"max_digits": 6, "decimal_places": 2}


class StrategyType(models.TextChoices):
    LUCKY = "lucky"
    MARKET_MAKER = "market_maker"
    NOISE = "noise"
    EVENT_TRADER = "event_trader"
    QUANT = "quant"
    UNKNOWN = "unknown"


class InfoEdgeLevel(models.TextChoices):
    INSUFFICIENT_DATA = "insufficient_data"
    NO_EDGE = "no_edge"
    MILD_EDGE = "mild_edge"
    PROCESSING_EDGE = "processing_edge"


class PoolTier(models.TextChoices):
    OBSERVATION = "observation"
    STRATEGY = "strategy"
    STAR = "star"


class RiskLevel(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Momentum(models.TextChoices):
    HEATING = "heating"
    STABLE = "stable"
    COOLING = "cooling"


class WalletSnapshot(models.Model):
    wallet = models.OneToOneField(
        Wallet, on_delete=models.CASCADE, primary_key=True, db_constraint=False, related_name="snapshot"
    )
    # Layer 1: facts from position accounting.
    total_trades = models.PositiveIntegerField(default=0)
    markets_traded = models.PositiveIntegerField(default=0)
    volume_total = models.DecimalField(**MONEY, default=ZERO)
    volume_30d = models.DecimalField(**MONEY, default=ZERO)
    fees_paid = models.DecimalField(**MONEY, default=ZERO)
    realized_pnl = models.DecimalField(**MONEY, default=ZERO)
    unrealized_pnl = models.DecimalField(**MONEY, default=ZERO)
    trading_pnl = models.DecimalField(**MONEY, default=ZERO, help_text="realised + unrealised, net of fees")
    maker_rebates = models.DecimalField(**MONEY, default=ZERO, help_text="0 until a source reports rebates")
    total_pnl = models.DecimalField(**MONEY, default=ZERO, help_text="trading_pnl + maker_rebates")
    roi = models.DecimalField(**RATIO, default=ZERO)
    win_rate = models.DecimalField(**RATIO, null=True, blank=True)
    resolved_positions = models.PositiveIntegerField(default=0)
    winning_positions = models.PositiveIntegerField(default=0)
    open_positions = models.PositiveIntegerField(default=0)
    trades_7d = models.PositiveIntegerField(default=0)
    pnl_7d = models.DecimalField(**MONEY, default=ZERO)
    pnl_30d = models.DecimalField(**MONEY, default=ZERO)
    realized_pnl_24h = models.DecimalField(**MONEY, default=ZERO)
    max_drawdown_7d = models.DecimalField(**MONEY, default=ZERO)
    stability_score = models.DecimalField(**SCORE, default=ZERO)
    first_trade_at = models.DateTimeField(null=True, blank=True)
    last_trade_at = models.DateTimeField(null=True, blank=True)
    # Layer 2: score and classification.
    smart_score = models.DecimalField(**SCORE, default=ZERO)
    confidence = models.DecimalField(**RATIO, default=ZERO)
    strategy_type = models.CharField(max_length=16, choices=StrategyType.choices, default=StrategyType.UNKNOWN)
    pool_tier = models.CharField(max_length=12, choices=PoolTier.choices, default=PoolTier.OBSERVATION)
    risk_level = models.CharField(max_length=8, choices=RiskLevel.choices, default=RiskLevel.MEDIUM)
    suitable_for = models.CharField(max_length=40, default="watch_only")
    suggested_position = models.CharField(max_length=20, default="0%")
    momentum = models.CharField(max_length=8, choices=Momentum.choices, default=Momentum.STABLE)
    status_7d = models.CharField(max_length=12, default="inactive")
    # Layer 3: information edge.
    info_edge_level = models.CharField(
        max_length=20, choices=InfoEdgeLevel.choices, default=InfoEdgeLevel.INSUFFICIENT_DATA
    )
    info_edge_mean_minutes = models.FloatField(null=True, blank=True)
    info_edge_stddev_minutes = models.FloatField(null=True, blank=True)
    info_edge_samples = models.PositiveIntegerField(default=0)
    info_edge_z = models.FloatField(null=True, blank=True)
    info_edge_p = models.FloatField(null=True, blank=True)
    # AI report and timestamps.
    has_ai_report = models.BooleanField(default=False)
    nl_summary = models.TextField(blank=True, default="")
    ai_model_id = models.CharField(max_length=100, blank=True, default="")
    ai_confidence = models.DecimalField(**RATIO, null=True, blank=True)
    potential_reached_at = models.DateTimeField(null=True, blank=True, help_text="trade time of the first crossing")
    scored_at = models.DateTimeField(default=timezone.now, help_text="when the scored values last changed")
    last_analyzed_at = models.DateTimeField(default=timezone.now, help_text="last computation")

    class Meta:
        db_table = "wallet_snapshot"
        # Sorts of the API, each with the wallet id as its stable tie-breaker.
        indexes = [
            models.Index(fields=["smart_score", "wallet"], name="wallet_snapshot_score"),
            models.Index(fields=["realized_pnl", "wallet"], name="wallet_snapshot_realized"),
            models.Index(fields=["total_trades", "wallet"], name="wallet_snapshot_trades"),
            models.Index(fields=["last_analyzed_at", "wallet"], name="wallet_snapshot_analyzed"),
            models.Index(fields=["scored_at", "wallet"], name="wallet_snapshot_scored"),
            # Partial: the highlight it serves lists gainers only, and a computation that leaves a
            # wallet outside it (no 24 h gain, most wallets) then adds no entry to this index.
            models.Index(
                fields=["realized_pnl_24h", "wallet"],
                condition=models.Q(realized_pnl_24h__gt=0),
                name="wallet_snapshot_realized_24h",
            ),
            models.Index(fields=["pool_tier", "smart_score"], name="wallet_snapshot_tier_score"),
            models.Index(fields=["strategy_type", "smart_score"], name="wallet_snapshot_strategy_score"),
            models.Index(
                fields=["potential_reached_at"],
                condition=models.Q(potential_reached_at__isnull=False),
                name="wallet_snapshot_potential",
            ),
            models.Index(
                fields=["ai_confidence", "wallet"],
                condition=models.Q(has_ai_report=True),
                name="wallet_snapshot_ai_confidence",
            ),
        ]

    def __str__(self) -> str:
        return f"wallet {self.wallet_id} score {self.smart_score}"


class WalletScoreHistory(models.Model):
    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, db_constraint=False, db_index=False)
    smart_score = models.DecimalField(**SCORE)
    confidence = models.DecimalField(**RATIO)
    strategy_type = models.CharField(max_length=16, choices=StrategyType.choices)
    pool_tier = models.CharField(max_length=12, choices=PoolTier.choices)
    risk_level = models.CharField(max_length=8, choices=RiskLevel.choices)
    momentum = models.CharField(max_length=8, choices=Momentum.choices)
    info_edge_level = models.CharField(max_length=20, choices=InfoEdgeLevel.choices)
    scored_at = models.DateTimeField()

    class Meta:
        db_table = "wallet_score_history"
        indexes = [models.Index(fields=["wallet", "-scored_at"], name="wallet_score_history_recent")]
        ordering = ["-scored_at", "-id"]

    def __str__(self) -> str:
        return f"wallet {self.wallet_id} {self.smart_score} @ {self.scored_at:%Y-%m-%d %H:%M}"


class AlertType(models.TextChoices):
    LARGE_POSITION = "large_position"
    TRADING_RATE_SPIKE = "trading_rate_spike"
    PNL_JUMP = "pnl_jump"
    FRESH_WALLET_LARGE_TRADE = "fresh_wallet_large_trade"
    PRE_EVENT_TIMING = "pre_event_timing"


class Severity(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Anomaly(models.Model):
    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, db_constraint=False, db_index=False)
    market = models.ForeignKey(Market, null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False, related_name="+")
    alert_type = models.CharField(max_length=32, choices=AlertType.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    evidence = models.JSONField(default=dict)
    description = models.TextField()
    # What triggered it (a fill's idempotency key, a day…): recomputing the same facts cannot raise
    # the same alert twice.
    dedupe_key = models.CharField(max_length=100)
    # Trade time of the trigger; the cooldown compares these, so a replay decides exactly as before.
    observed_at = models.DateTimeField()
    acknowledged = models.BooleanField(default=False)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "anomaly"
        constraints = [
            models.UniqueConstraint(fields=["wallet", "alert_type", "dedupe_key"], name="anomaly_dedupe_key")
        ]
        indexes = [
            models.Index(fields=["wallet", "alert_type", "-observed_at"], name="anomaly_cooldown"),
            models.Index(fields=["-created_at", "-id"], name="anomaly_recent"),
            models.Index(fields=["severity", "-created_at"], name="anomaly_severity_recent"),
        ]
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "anomalies"

    def __str__(self) -> str:
        return f"{self.alert_type} wallet {self.wallet_id} ({self.severity})"

    def acknowledge(self) -> None:
        if not self.acknowledged:
            self.acknowledged = True
            self.acknowledged_at = timezone.now()
            self.save(update_fields=["acknowledged", "acknowledged_at"])


class FeedEventType(models.TextChoices):
    AI_REPORT = "ai_report"
    PNL_JUMP = "pnl_jump"
    RISK_LEVEL_CHANGE = "risk_level_change"
    STRATEGY_CHANGE = "strategy_change"
    ANOMALY = "anomaly"
    POTENTIAL_REACHED = "potential_reached"


class FeedEvent(models.Model):
    """One table for every kind, so `event_id` is unique across kinds."""

    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, db_constraint=False, db_index=False)
    event_type = models.CharField(max_length=24, choices=FeedEventType.choices)
    event_time = models.DateTimeField()
    payload = models.JSONField(default=dict, help_text="before, after, reason_code and details")
    reason_code = models.CharField(max_length=60)
    action_required = models.BooleanField(default=False)
    suggestion = models.TextField(blank=True, default="")
    suggestion_zh = models.TextField(blank=True, default="")
    dedupe_key = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "feed_event"
        constraints = [models.UniqueConstraint(fields=["wallet", "event_type", "dedupe_key"], name="feed_event_dedupe_key")]
        indexes = [
            models.Index(fields=["wallet", "-event_time", "-id"], name="feed_event_wallet_recent"),
            models.Index(fields=["event_type", "-event_time"], name="feed_event_type_recent"),
        ]
        ordering = ["-event_time", "-id"]

    def __str__(self) -> str:
        return f"{self.event_type} wallet {self.wallet_id} @ {self.event_time:%Y-%m-%d %H:%M}"


class AiReport(models.Model):
    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, db_constraint=False, db_index=False)
    model_id = models.CharField(max_length=100, help_text='"template" when no model wrote it')
    report = models.JSONField(default=dict)
    nl_summary = models.TextField()
    risk_warnings = models.JSONField(default=list)
    confidence = models.DecimalField(**RATIO, default=ZERO)
    input_digest = models.CharField(max_length=64, help_text="sha256 of the facts the report was written from")
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "ai_report"
        indexes = [models.Index(fields=["wallet", "-created_at"], name="ai_report_wallet_recent")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"report {self.pk} wallet {self.wallet_id} by {self.model_id}"
