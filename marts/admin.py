"""Read-only views of the marts: they are rebuilt from facts, never edited by hand."""

from __future__ import annotations

from django.contrib import admin, messages

from ingest.changes import changed_wallets_push
from marts.models import ComputeCursor, WalletComputeState, WalletPosition, WalletTradeAgg1h, WalletWindow


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
