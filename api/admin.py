from django.contrib import admin

from api.models import AnomalyAcknowledgement, Portfolio, PortfolioWallet, WatchlistEntry
from marts.admin import ReadOnly


class PortfolioWalletInline(admin.TabularInline):
    model = PortfolioWallet
    # A million wallets: a select box would render every one of them.
    raw_id_fields = ["wallet"]
    extra = 1


@admin.register(Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    list_display = ["name", "name_zh", "risk_level", "expected_return", "max_drawdown", "is_published", "position"]
    list_editable = ["is_published", "position"]
    list_filter = ["risk_level", "is_published"]
    search_fields = ["name", "name_zh"]
    inlines = [PortfolioWalletInline]


@admin.register(WatchlistEntry)
class WatchlistEntryAdmin(admin.ModelAdmin):
    list_display = ["fingerprint", "wallet", "created_at"]
    raw_id_fields = ["wallet"]
    search_fields = ["fingerprint", "wallet__address"]
    date_hierarchy = "created_at"


@admin.register(AnomalyAcknowledgement)
class AnomalyAcknowledgementAdmin(ReadOnly):
    """The audit trail of acknowledging alerts: read only, as an audit trail must be."""

    list_display = ["created_at", "anomaly", "action", "who"]
    list_filter = ["action"]
    search_fields = ["=anomaly__id", "fingerprint_hash", "client_address", "user__username"]
    raw_id_fields = ["anomaly", "user"]
    date_hierarchy = "created_at"
