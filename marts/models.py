"""Per-wallet aggregates derived from core facts, rebuilt by the compute drain.

Every row here is a pure function of `trade_fill`, `market` / `outcome_token` and the time of the
computation: a wallet's rows are replaced as a set (never incremented), so a redelivered batch or a
replay cannot double-count. Row ids are surrogate and not part of a row's meaning; the checksum
command hashes the natural keys and values only.

Money columns use NUMERIC(30, 12) like the facts they come from (`ingest.models.MONEY`).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils import timezone

from ingest.models import MONEY, Market, Wallet

ZERO = Decimal(0)
# Ratios (win rate, ROI, prices) do not need 18 integer digits; 12 decimals keep them exact enough
# to compare across recomputations.
RATIO = {"max_digits": 24, "decimal_places": 12}


class TradeAggFields(models.Model):
    """Trade aggregates of one wallet over one bucket. Realised PnL here is from sells only:
    settlements are not trades and are counted in windows and daily features instead."""

    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, db_constraint=False, db_index=False)
    bucket_start = models.DateTimeField()
    trades = models.PositiveIntegerField(default=0)
    buy_trades = models.PositiveIntegerField(default=0)
    sell_trades = models.PositiveIntegerField(default=0)
    buy_volume = models.DecimalField(**MONEY, default=ZERO, help_text="USDC paid, fees included")
    sell_volume = models.DecimalField(**MONEY, default=ZERO, help_text="USDC received, net of fees")
    buy_shares = models.DecimalField(**MONEY, default=ZERO)
    sell_shares = models.DecimalField(**MONEY, default=ZERO)
    fees = models.DecimalField(**MONEY, default=ZERO)
    realized_pnl = models.DecimalField(**MONEY, default=ZERO)
    markets_traded = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


class WalletTradeAgg5m(TradeAggFields):
    class Meta:
        db_table = "wallet_trade_agg_5m"
        constraints = [models.UniqueConstraint(fields=["wallet", "bucket_start"], name="wallet_trade_agg_5m_key")]
        # The window slider finds the buckets that left a window since its last run by this index.
        indexes = [models.Index(fields=["bucket_start"], name="wallet_trade_agg_5m_time")]

    def __str__(self) -> str:
        return f"wallet {self.wallet_id} 5m @ {self.bucket_start:%Y-%m-%d %H:%M}"


class WalletTradeAgg1h(TradeAggFields):
    class Meta:
        db_table = "wallet_trade_agg_1h"
        constraints = [models.UniqueConstraint(fields=["wallet", "bucket_start"], name="wallet_trade_agg_1h_key")]
        indexes = [models.Index(fields=["bucket_start"], name="wallet_trade_agg_1h_time")]

    def __str__(self) -> str:
        return f"wallet {self.wallet_id} 1h @ {self.bucket_start:%Y-%m-%d %H:%M}"


class WindowName(models.TextChoices):
    H24 = "24h"
    D7 = "7d"
    D30 = "30d"
    D90 = "90d"


class WalletWindow(models.Model):
    """A rolling window ending at `as_of` (the computation time): time-relative by nature."""

    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, db_constraint=False, db_index=False)
    window = models.CharField(max_length=4, choices=WindowName.choices)
    as_of = models.DateTimeField()
    trades = models.PositiveIntegerField(default=0)
    volume = models.DecimalField(**MONEY, default=ZERO)
    buy_volume = models.DecimalField(**MONEY, default=ZERO)
    sell_volume = models.DecimalField(**MONEY, default=ZERO)
    fees = models.DecimalField(**MONEY, default=ZERO)
    realized_pnl = models.DecimalField(**MONEY, default=ZERO, help_text="sells and settlements inside the window")
    active_days = models.PositiveIntegerField(default=0)
    markets_traded = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "wallet_window"
        constraints = [models.UniqueConstraint(fields=["wallet", "window"], name="wallet_window_key")]

    def __str__(self) -> str:
        return f"wallet {self.wallet_id} {self.window}"


class PositionStatus(models.TextChoices):
    OPEN = "open"
    CLOSED = "closed"  # sold down to zero before any resolution
    WON = "won"
    LOST = "lost"
    VOID = "void"


class WalletPosition(models.Model):
    """Position accounting per (wallet, outcome token) with an average cost basis."""

    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, db_constraint=False, db_index=False)
    token_id = models.CharField(max_length=100)
    market = models.ForeignKey(Market, on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="+")
    outcome_index = models.SmallIntegerField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=PositionStatus.choices, default=PositionStatus.OPEN)
    trades = models.PositiveIntegerField(default=0)
    shares = models.DecimalField(**MONEY, default=ZERO, help_text="held now; 0 once settled")
    avg_cost = models.DecimalField(**MONEY, default=ZERO)
    cost_basis = models.DecimalField(**MONEY, default=ZERO)
    bought_shares = models.DecimalField(**MONEY, default=ZERO)
    bought_usdc = models.DecimalField(**MONEY, default=ZERO)
    sold_shares = models.DecimalField(**MONEY, default=ZERO)
    sold_usdc = models.DecimalField(**MONEY, default=ZERO)
    fees = models.DecimalField(**MONEY, default=ZERO)
    realized_pnl = models.DecimalField(**MONEY, default=ZERO, help_text="sells plus settlement")
    settlement_price = models.DecimalField(**MONEY, null=True, blank=True)
    settled_shares = models.DecimalField(**MONEY, default=ZERO)
    settled_at = models.DateTimeField(null=True, blank=True)
    mark_price = models.DecimalField(**MONEY, null=True, blank=True)
    unrealized_pnl = models.DecimalField(**MONEY, default=ZERO)
    first_trade_at = models.DateTimeField()
    last_trade_at = models.DateTimeField()

    class Meta:
        db_table = "wallet_position"
        constraints = [models.UniqueConstraint(fields=["wallet", "token_id"], name="wallet_position_key")]
        indexes = [
            # "Who traded this market" when it resolves: every position's status and win flag change.
            models.Index(fields=["market"], name="wallet_position_market"),
            # Settlements leaving a rolling window, for the window slider.
            models.Index(fields=["settled_at"], condition=models.Q(settled_at__isnull=False), name="wallet_position_settled"),
        ]

    def __str__(self) -> str:
        return f"wallet {self.wallet_id} token {self.token_id[:12]}… {self.status}"


class WalletDailyFeature(models.Model):
    """One UTC day of a wallet's activity: the series stability, drawdown and anomaly baselines use."""

    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, db_constraint=False, db_index=False)
    day = models.DateField()
    trades = models.PositiveIntegerField(default=0)
    buy_volume = models.DecimalField(**MONEY, default=ZERO)
    sell_volume = models.DecimalField(**MONEY, default=ZERO)
    fees = models.DecimalField(**MONEY, default=ZERO)
    realized_pnl = models.DecimalField(**MONEY, default=ZERO)
    markets_traded = models.PositiveIntegerField(default=0)
    max_trade_usdc = models.DecimalField(**MONEY, default=ZERO)

    class Meta:
        db_table = "wallet_daily_feature"
        constraints = [models.UniqueConstraint(fields=["wallet", "day"], name="wallet_daily_feature_key")]

    def __str__(self) -> str:
        return f"wallet {self.wallet_id} {self.day}"


class WalletComputeState(models.Model):
    """When a wallet was last computed and which facts that computation saw (for the reconciler)."""

    wallet = models.OneToOneField(Wallet, on_delete=models.CASCADE, primary_key=True, db_constraint=False)
    last_computed_at = models.DateTimeField()
    facts_through = models.DateTimeField(null=True, blank=True, help_text="newest ingested_at among the fills seen")
    last_trade_at = models.DateTimeField(null=True, blank=True)
    fills = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "wallet_compute_state"
        indexes = [models.Index(fields=["last_computed_at"], name="wallet_compute_state_time")]

    def __str__(self) -> str:
        return f"wallet {self.wallet_id} computed {self.last_computed_at:%Y-%m-%d %H:%M:%S}"


class ComputeCursor(models.Model):
    """High-water marks of periodic compute jobs (window slider, reconciler). Moves only forward."""

    name = models.CharField(max_length=60, unique=True)
    position = models.DateTimeField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "compute_cursor"

    def __str__(self) -> str:
        return f"{self.name} @ {self.position:%Y-%m-%d %H:%M:%S}"


# --- the wallet ledger (marts.ledger): rebuilt from landed /v2/activity rows ---------------------


class WalletLedgerEntry(models.Model):
    """One leg of one movement of a wallet, in the upstream's order (`sequence`), as
    `marts.ledger` reads it: shares and cash signed from the wallet's side, the fee of a fill,
    the price the Polymarket basis applied. A wallet's entries are replaced as a set."""

    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, db_constraint=False, db_index=False)
    sequence = models.PositiveIntegerField()
    leg = models.PositiveSmallIntegerField(default=0)
    occurred_at = models.DateTimeField()
    activity_type = models.CharField(max_length=40, help_text="as Polymarket sent it")
    kind = models.CharField(max_length=16)
    source_key = models.CharField(max_length=64, help_text="idempotency key of the landed activity row")
    condition_id = models.CharField(max_length=66, blank=True, default="")
    token_id = models.CharField(max_length=100, blank=True, default="")
    shares = models.DecimalField(**MONEY, default=ZERO)
    cash = models.DecimalField(**MONEY, default=ZERO)
    fee = models.DecimalField(**MONEY, default=ZERO)
    price = models.DecimalField(**MONEY, null=True, blank=True)
    note = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        db_table = "wallet_ledger_entry"
        constraints = [
            # With the time: the table is partitioned by month on occurred_at (marts.partitions).
            models.UniqueConstraint(fields=["wallet", "sequence", "leg", "occurred_at"], name="wallet_ledger_entry_key"),
        ]

    def __str__(self) -> str:
        return f"wallet {self.wallet_id} #{self.sequence}.{self.leg} {self.kind}"


class WalletLedgerPosition(models.Model):
    """A wallet's position in one token from its ledger, on both bases: Polymarket's (pre-fee
    average cost: `avg_price`, `realized_pnl`) and cash (after fees: `cash_avg_price`,
    `cash_realized_pnl`). Settlement of shares still held at resolution is `settlement_pnl`."""

    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, db_constraint=False, db_index=False)
    token_id = models.CharField(max_length=100)
    condition_id = models.CharField(max_length=66, blank=True, default="")
    outcome_index = models.SmallIntegerField(null=True, blank=True)
    status = models.CharField(max_length=8)
    shares = models.DecimalField(**MONEY, default=ZERO)
    avg_price = models.DecimalField(**MONEY, default=ZERO)
    realized_pnl = models.DecimalField(**MONEY, default=ZERO)
    cash_avg_price = models.DecimalField(**MONEY, default=ZERO)
    cash_realized_pnl = models.DecimalField(**MONEY, default=ZERO)
    fees_paid = models.DecimalField(**MONEY, default=ZERO)
    bought_shares = models.DecimalField(**MONEY, default=ZERO)
    invested = models.DecimalField(**MONEY, default=ZERO)
    settlement_price = models.DecimalField(**MONEY, null=True, blank=True)
    settlement_pnl = models.DecimalField(**MONEY, default=ZERO)
    cash_settlement_pnl = models.DecimalField(**MONEY, default=ZERO)
    mark_price = models.DecimalField(**MONEY, null=True, blank=True)
    marked_at = models.DateTimeField(null=True, blank=True, help_text="when mark_price was read (Gamma's latest)")
    unrealized_pnl = models.DecimalField(**MONEY, default=ZERO)
    cost_basis_known = models.BooleanField(default=True)
    movements = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "wallet_ledger_position"
        constraints = [models.UniqueConstraint(fields=["wallet", "token_id"], name="wallet_ledger_position_key")]
        # The holders of a market when it resolves (idle ones included).
        indexes = [models.Index(fields=["condition_id"], name="wallet_ledger_position_market")]

    def __str__(self) -> str:
        return f"wallet {self.wallet_id} token {self.token_id[:12]}… {self.status}"


class ReconciliationStatus(models.TextChoices):
    RECONCILED = "reconciled"  # within 1 % or 0.01 USDC of Polymarket's /v2/positions
    DRIFT = "drift"
    UNKNOWN = "unknown"  # no Polymarket positions landed yet, or a cost basis we cannot know


class TotalsStatus(models.TextChoices):
    """The ledger's totals against Polymarket's profile card (/v2/user-stats)."""

    RECONCILED = "reconciled"  # every total within 1 % or 0.01 USDC
    DRIFT = "drift"
    UNAVAILABLE = "unavailable"  # no card landed: unknown wallet (`data: null`) or no PnL published yet


class WalletLedgerSummary(models.Model):
    """A wallet's ledger totals on both bases and their reconciliation with Polymarket."""

    wallet = models.OneToOneField(Wallet, on_delete=models.CASCADE, primary_key=True, db_constraint=False)
    computed_at = models.DateTimeField()
    activity_through = models.BigIntegerField(default=0, help_text="newest landing id of the rows read")
    entries = models.PositiveIntegerField(default=0)
    fees_paid = models.DecimalField(**MONEY, default=ZERO)
    maker_rebates = models.DecimalField(**MONEY, default=ZERO)
    rewards = models.DecimalField(**MONEY, default=ZERO)
    unknown_usdc = models.DecimalField(**MONEY, default=ZERO, help_text="rows of unknown types: shown, not counted")
    unknown_types = models.JSONField(default=list, blank=True)
    realized_pnl = models.DecimalField(**MONEY, default=ZERO, help_text="Polymarket basis")
    settlement_pnl = models.DecimalField(**MONEY, default=ZERO)
    unrealized_pnl = models.DecimalField(**MONEY, default=ZERO)
    cash_pnl = models.DecimalField(**MONEY, default=ZERO)
    resolved_positions = models.PositiveIntegerField(default=0)
    winning_positions = models.PositiveIntegerField(default=0)
    unknown_cost_positions = models.PositiveIntegerField(default=0)
    win_rate = models.DecimalField(**RATIO, default=ZERO)
    roi = models.DecimalField(**RATIO, default=ZERO, help_text="known_cost_pnl / invested")
    invested = models.DecimalField(**MONEY, default=ZERO, help_text="pre-fee cost bought, known-cost positions")
    known_cost_pnl = models.DecimalField(
        **MONEY, default=ZERO, help_text="realised + settled + unrealised, known-cost positions"
    )
    reconciliation_status = models.CharField(
        max_length=10, choices=ReconciliationStatus.choices, default=ReconciliationStatus.UNKNOWN
    )
    reconciliation_difference = models.DecimalField(**MONEY, default=ZERO, help_text="ours − Polymarket's realised")
    reconciliation_size_difference = models.DecimalField(**MONEY, default=ZERO)
    reconciliation_positions = models.PositiveIntegerField(default=0)
    reconciliation_checked_at = models.DateTimeField(null=True, blank=True)
    history_refetch_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="when a drift or an unknown cost basis asked for the activity from start=1"
    )
    # Against Polymarket's profile card (/v2/user-stats): ours − theirs, each total. A totals drift
    # makes `reconciliation_status` drift too; an unavailable card leaves it to the positions.
    totals_status = models.CharField(max_length=11, choices=TotalsStatus.choices, default=TotalsStatus.UNAVAILABLE)
    totals_realized_difference = models.DecimalField(
        **MONEY, default=ZERO, help_text="after-fee realised PnL − the card's market + LP + combo realised"
    )
    totals_fees_difference = models.DecimalField(**MONEY, default=ZERO, help_text="fees charged − the card's fees")
    totals_maker_rebates_difference = models.DecimalField(**MONEY, default=ZERO)
    totals_rewards_difference = models.DecimalField(**MONEY, default=ZERO)
    totals_observed_at = models.DateTimeField(null=True, blank=True, help_text="the card's observation time")

    class Meta:
        db_table = "wallet_ledger_summary"
        indexes = [models.Index(fields=["reconciliation_status"], name="wallet_ledger_recon_status")]

    def __str__(self) -> str:
        return f"wallet {self.wallet_id} ledger {self.reconciliation_status}"


class LedgerCursor(models.Model):
    """How far the ledger has read a landing stream (landing ids only grow)."""

    stream = models.CharField(max_length=40, unique=True)
    landing_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "ledger_cursor"

    def __str__(self) -> str:
        return f"{self.stream} @ {self.landing_id}"
