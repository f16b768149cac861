from __future__ import annotations

from django.contrib import admin

from scoring.models import (
    AiReport,
    Anomaly,
    EdgeFdrState,
    EdgeSealedDay,
    FeedEvent,
    MarketEdgeDayDue,
    SignalPrediction,
    WalletScoreHistory,
    WalletSnapshot,
)
from scoring.selectors import signal_scorecard


@admin.register(WalletSnapshot)
class WalletSnapshotAdmin(admin.ModelAdmin):
    list_display = ("wallet_id", "smart_score", "strategy_type", "pool_tier", "risk_level", "total_trades", "realized_pnl",
                    "info_edge_level", "last_analyzed_at")
    list_filter = ("pool_tier", "strategy_type", "risk_level", "info_edge_level", "has_ai_report")
    search_fields = ("wallet__address", "wallet__pseudonym")
    ordering = ("-smart_score", "wallet_id")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WalletScoreHistory)
class WalletScoreHistoryAdmin(admin.ModelAdmin):
    list_display = ("wallet_id", "smart_score", "strategy_type", "pool_tier", "risk_level", "computed_at", "valid_as_of")
    search_fields = ("wallet__address",)

    # Append-only: the point-in-time record of what every score was.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Anomaly)
class AnomalyAdmin(admin.ModelAdmin):
    list_display = ("id", "alert_type", "severity", "wallet_id", "market_id", "observed_at", "acknowledged", "created_at")
    list_filter = ("alert_type", "severity", "acknowledged")
    search_fields = ("wallet__address", "description")
    readonly_fields = ("wallet", "market", "alert_type", "severity", "evidence", "description", "dedupe_key", "observed_at",
                       "created_at")
    actions = ["acknowledge"]

    @admin.action(description="Acknowledge the selected anomalies")
    def acknowledge(self, request, queryset):
        for anomaly in queryset.filter(acknowledged=False):
            anomaly.acknowledge()


@admin.register(FeedEvent)
class FeedEventAdmin(admin.ModelAdmin):
    list_display = ("id", "event_type", "wallet_id", "event_time", "reason_code", "action_required")
    list_filter = ("event_type", "action_required")
    search_fields = ("wallet__address",)

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AiReport)
class AiReportAdmin(admin.ModelAdmin):
    list_display = ("id", "wallet_id", "model_id", "confidence", "latency_ms", "created_at")
    list_filter = ("model_id",)
    search_fields = ("wallet__address",)

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SignalPrediction)
class SignalPredictionAdmin(admin.ModelAdmin):
    """The change list opens with the scorecard (scoring.selectors.signal_scorecard)."""

    list_display = ("id", "kind", "label", "wallet_id", "market_id", "signal_at", "price_at_signal", "price_1h",
                    "price_24h", "settlement_value", "followed_through")
    list_filter = ("kind", "label", "followed_through")
    search_fields = ("wallet__address",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, extra_context={**(extra_context or {}), "scorecard": signal_scorecard()})


@admin.register(EdgeFdrState)
class EdgeFdrStateAdmin(admin.ModelAdmin):
    list_display = ("computed_at", "tested", "changed", "seconds")
    exclude = ("knots",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(EdgeSealedDay)
class EdgeSealedDayAdmin(admin.ModelAdmin):
    """The edge baselines' sealed days (scoring.baselines): one row per UTC day the seal job stored."""

    list_display = ("day", "sealed_at", "market_days", "seconds")
    ordering = ("-day",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MarketEdgeDayDue)
class MarketEdgeDayDueAdmin(admin.ModelAdmin):
    """Sealed market days a late or backfilled fill made stale; the next seal pass recomputes them."""

    list_display = ("market_id", "day", "marked_at")
    ordering = ("-marked_at",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
