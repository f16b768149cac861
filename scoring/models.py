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
    ARBITRAGE = "arbitrage"
    UNKNOWN = "unknown"


# Wallets whose trading does not bet on a side (they quote both, or lock a price across outcomes):
# never potential wallets, never highlights.
NON_DIRECTIONAL_STRATEGIES = (StrategyType.MARKET_MAKER, StrategyType.ARBITRAGE)


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
    # Numbers, never null: 0 (p and q 1) while there is no evidence. See scoring.edge.
    info_edge_mean_minutes = models.FloatField(default=0.0)
    info_edge_stddev_minutes = models.FloatField(default=0.0)
    info_edge_samples = models.PositiveIntegerField(default=0, help_text="decisions followed by news within the horizon")
    info_edge_z = models.FloatField(default=0.0)
    info_edge_p = models.FloatField(default=1.0, help_text="two-sided exact binomial against the markets' baseline")
    info_edge_q = models.FloatField(default=1.0, help_text="Benjamini–Hochberg q across every tested wallet")
    info_edge_decisions = models.PositiveIntegerField(default=0, help_text="decisions in markets that had news")
    info_edge_markets = models.PositiveIntegerField(default=0, help_text="markets with a decision followed by news")
    info_edge_wallet_rate = models.FloatField(default=0.0, help_text="share of decisions within W minutes before news")
    info_edge_baseline_rate = models.FloatField(default=0.0, help_text="the same share for the markets' other traders")
    info_edge_effect = models.FloatField(default=0.0, help_text="wallet_rate − baseline_rate")
    info_edge_tested = models.BooleanField(default=False, help_text="enough decisions and markets to be tested")
    # Hysteresis: a computed label, tier or risk level that differs from the settled one waits here
    # ({field: [value, since]}) until it has held for SCORING_HOLD_SECONDS.
    pending_changes = models.JSONField(default=dict, blank=True)
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
    """Append-only: a row per change of a displayed value, never updated. `computed_at` is when
    the score was computed and `valid_as_of` the newest trade time it had seen; "the score as of
    T" is the newest row computed at or before T (scoring.selectors.score_as_of)."""

    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, db_constraint=False, db_index=False)
    smart_score = models.DecimalField(**SCORE)
    confidence = models.DecimalField(**RATIO)
    strategy_type = models.CharField(max_length=16, choices=StrategyType.choices)
    pool_tier = models.CharField(max_length=12, choices=PoolTier.choices)
    risk_level = models.CharField(max_length=8, choices=RiskLevel.choices)
    momentum = models.CharField(max_length=8, choices=Momentum.choices)
    info_edge_level = models.CharField(max_length=20, choices=InfoEdgeLevel.choices)
    scored_at = models.DateTimeField()
    computed_at = models.DateTimeField(default=timezone.now)
    valid_as_of = models.DateTimeField(null=True, blank=True, help_text="trade time of the newest fill it had seen")

    class Meta:
        db_table = "wallet_score_history"
        indexes = [
            models.Index(fields=["wallet", "-scored_at"], name="wallet_score_history_recent"),
            models.Index(fields=["wallet", "-computed_at"], name="wallet_score_history_as_of"),
        ]
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


class EdgeFdrState(models.Model):
    """The last Benjamini–Hochberg pass over every tested wallet (one row): how many were tested and
    knots of (p, rank) — the 200 smallest p-values exactly, then every m/200-th — from which the
    drain estimates a changed wallet's q until the next pass computes it exactly."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    computed_at = models.DateTimeField()
    tested = models.PositiveIntegerField(default=0)
    knots = models.JSONField(default=list)
    seconds = models.FloatField(default=0.0, help_text="duration of the pass")
    changed = models.PositiveIntegerField(default=0, help_text="wallets whose label the pass changed")

    class Meta:
        db_table = "edge_fdr_state"

    def __str__(self) -> str:
        return f"BH pass over {self.tested} wallets at {self.computed_at:%Y-%m-%d %H:%M}"


class SignalPrediction(models.Model):
    """A signal read as a prediction that one side (outcome token) of a market is underpriced, and
    how it played out: the side's price at the signal, +1 h, +24 h and its settlement value, and the
    same for the opposite side (the reverse control)."""

    kind = models.CharField(max_length=48, help_text="anomaly:<type>, feed:<type> or potential")
    source_id = models.BigIntegerField(help_text="the anomaly's or feed event's id")
    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, db_constraint=False, db_index=False)
    market = models.ForeignKey(Market, on_delete=models.CASCADE, db_constraint=False, related_name="+")
    token_id = models.CharField(max_length=100, help_text="the implied side")
    reverse_token_id = models.CharField(max_length=100, blank=True, default="")
    signal_at = models.DateTimeField(help_text="trade time the signal is about")
    label = models.CharField(max_length=20, blank=True, default="", help_text="strategy as scored at signal_at")
    price_at_signal = models.DecimalField(**MONEY, null=True, blank=True)
    price_1h = models.DecimalField(**MONEY, null=True, blank=True)
    price_24h = models.DecimalField(**MONEY, null=True, blank=True)
    settlement_value = models.DecimalField(**MONEY, null=True, blank=True)
    reverse_price_at_signal = models.DecimalField(**MONEY, null=True, blank=True)
    reverse_settlement_value = models.DecimalField(**MONEY, null=True, blank=True)
    followed_through = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "signal_prediction"
        constraints = [models.UniqueConstraint(fields=["kind", "source_id"], name="signal_prediction_source")]
        indexes = [
            models.Index(fields=["signal_at"], condition=models.Q(followed_through=False), name="signal_prediction_open"),
            models.Index(fields=["kind", "label"], name="signal_prediction_kind_label"),
        ]
        ordering = ["-signal_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} wallet {self.wallet_id} → token {self.token_id} @ {self.signal_at:%Y-%m-%d %H:%M}"


class MarketEdgeDay(models.Model):
    """One market's decisions on one sealed UTC day, as the edge test's market baseline counts them
    (scoring.baselines): the baseline over EDGE_BASELINE_DAYS is the sum of these rows plus the
    unsealed days read live, so a market's baseline costs its recent fills, not 90 days of them.

    `news_count` is the number of news items that could hit the day's decisions (event time in
    the day or within EDGE_WINDOW_MINUTES after it) when the row was computed: a reader that finds
    another number reads the day live instead (news arrived later). A day with no decisions has
    no row."""

    market = models.ForeignKey(Market, on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="+")
    day = models.DateField()
    decisions = models.PositiveIntegerField()
    hits = models.PositiveIntegerField()
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    news_count = models.PositiveIntegerField()
    computed_at = models.DateTimeField()

    class Meta:
        db_table = "market_edge_day"
        constraints = [models.UniqueConstraint(fields=["market", "day"], name="market_edge_day_key")]

    def __str__(self) -> str:
        return f"market {self.market_id} {self.day}: {self.decisions} decisions, {self.hits} hits"


class EdgeSealedDay(models.Model):
    """A UTC day the seal job stored for every market (scoring.baselines): when, and what it cost.
    A fill of a sealed day ingested after `sealed_at` may be missing from the day's counts."""

    day = models.DateField(primary_key=True)
    sealed_at = models.DateTimeField()
    rules = models.CharField(
        max_length=60, default="", help_text="decision window and news window the counts were made with"
    )
    market_days = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0.0)

    class Meta:
        db_table = "edge_sealed_day"

    def __str__(self) -> str:
        return f"{self.day} sealed at {self.sealed_at:%Y-%m-%d %H:%M:%S}"


class MarketEdgeDayDue(models.Model):
    """A sealed market day whose fills changed after it was sealed (a backfilled or late fill, seen
    by the drain): readers read it live until the seal job has recomputed it."""

    market = models.ForeignKey(Market, on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="+")
    day = models.DateField()
    marked_at = models.DateTimeField()

    class Meta:
        db_table = "market_edge_day_due"
        constraints = [models.UniqueConstraint(fields=["market", "day"], name="market_edge_day_due_key")]

    def __str__(self) -> str:
        return f"market {self.market_id} {self.day} due since {self.marked_at:%Y-%m-%d %H:%M:%S}"
