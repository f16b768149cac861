"""Read-only views of the marts: they are rebuilt from facts, never edited by hand."""

from __future__ import annotations

from django.contrib import admin, messages

from ingest.changes import changed_wallets_push
from marts.models import (
    ComputeCursor,
    WalletComputeState,
    WalletLedgerEntry,
    WalletLedgerPosition,
    WalletLedgerSummary,
    WalletPosition,
    WalletTradeAgg1h,
    WalletWindow,
)


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WalletComputeState)
class WalletComputeStateAdmin(ReadOnly):
    list_display = ("wallet_id", "last_computed_at", "facts_through", "last_trade_at", "fills")
    search_fields = ("wallet__address",)
    ordering = ("-last_computed_at",)
    actions = ["requeue"]

    @admin.action(description="Recompute the selected wallets (queue them)")
    def requeue(self, request, queryset):
        pushed = changed_wallets_push(wallet_ids=queryset.values_list("wallet_id", flat=True))
        self.message_user(request, f"{pushed} wallets queued for recomputation", messages.SUCCESS)


@admin.register(WalletPosition)
class WalletPositionAdmin(ReadOnly):
    list_display = ("wallet_id", "market_id", "token_id", "status", "shares", "avg_cost", "realized_pnl", "unrealized_pnl")
    list_filter = ("status",)
    search_fields = ("wallet__address", "token_id")


@admin.register(WalletWindow)
class WalletWindowAdmin(ReadOnly):
    list_display = ("wallet_id", "window", "as_of", "trades", "volume", "realized_pnl", "active_days", "markets_traded")
    list_filter = ("window",)


@admin.register(WalletTradeAgg1h)
class WalletTradeAgg1hAdmin(ReadOnly):
    list_display = ("wallet_id", "bucket_start", "trades", "buy_volume", "sell_volume", "fees", "realized_pnl")
    date_hierarchy = "bucket_start"


@admin.register(ComputeCursor)
class ComputeCursorAdmin(ReadOnly):
    list_display = ("name", "position", "updated_at")


@admin.register(WalletLedgerSummary)
class WalletLedgerSummaryAdmin(ReadOnly):
    """The wallet ledger's totals and its reconciliation with Polymarket; a drift stays visible."""

    list_display = ("wallet_id", "reconciliation_status", "reconciliation_difference", "reconciliation_size_difference",
                    "reconciliation_checked_at", "totals_status", "totals_realized_difference", "totals_fees_difference",
                    "totals_maker_rebates_difference", "totals_rewards_difference", "realized_pnl", "cash_pnl",
                    "fees_paid", "maker_rebates", "rewards", "unknown_cost_positions", "entries")
    list_filter = ("reconciliation_status", "totals_status")
    search_fields = ("wallet__address",)
    ordering = ("-reconciliation_checked_at",)


@admin.register(WalletLedgerPosition)
class WalletLedgerPositionAdmin(ReadOnly):
    list_display = ("wallet_id", "token_id", "status", "shares", "avg_price", "realized_pnl", "cash_avg_price",
                    "cash_realized_pnl", "fees_paid", "settlement_pnl", "cost_basis_known")
    list_filter = ("status", "cost_basis_known")
    search_fields = ("wallet__address", "token_id", "condition_id")


@admin.register(WalletLedgerEntry)
class WalletLedgerEntryAdmin(ReadOnly):
    list_display = ("wallet_id", "sequence", "leg", "occurred_at", "activity_type", "kind", "token_id", "shares",
                    "cash", "fee", "price", "note")
    list_filter = ("kind",)
    search_fields = ("wallet__address", "source_key")
    ordering = ("wallet_id", "sequence", "leg")
