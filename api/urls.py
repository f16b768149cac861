import re

from django.urls import include, path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api import views
from api.signals import SignalScorecardView


class IdConverter:
    """A positive id that fits a PostgreSQL bigint. Longer digit strings match no route (404)
    instead of reaching the database as an out-of-range integer (a driver error, a 500)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

v1 = [
    path("wallets", views.WalletListView.as_view(), name="wallets"),
    path("wallets/potential", views.WalletPotentialListView.as_view(), name="wallets-potential"),
    path("wallets/<id:wallet_id>", views.WalletDetailView.as_view(), name="wallet"),
    path("wallets/<id:wallet_id>/profile", views.WalletProfileView.as_view(), name="wallet-profile"),
    path("wallets/<id:wallet_id>/share-card", views.WalletShareCardView.as_view(), name="wallet-share-card"),
    path("wallets/<id:wallet_id>/share-landing", views.WalletShareLandingView.as_view(), name="wallet-share-landing"),
    path("wallets/<id:wallet_id>/decision-card", views.WalletDecisionCardView.as_view(), name="wallet-decision-card"),
    path("wallets/<id:wallet_id>/explanations", views.WalletExplanationsView.as_view(), name="wallet-explanations"),
    path("wallets/<id:wallet_id>/info-edge", views.WalletInfoEdgeView.as_view(), name="wallet-info-edge"),
    path("watchlist", views.WatchlistView.as_view(), name="watchlist"),
    path("watchlist/batch", views.WatchlistBatchView.as_view(), name="watchlist-batch"),
    path("watchlist/feed", views.WatchlistFeedView.as_view(), name="watchlist-feed"),
    path("watchlist/summary", views.WatchlistSummaryView.as_view(), name="watchlist-summary"),
    path("watchlist/<id:wallet_id>", views.WatchlistEntryView.as_view(), name="watchlist-entry"),
    path("portfolios", views.PortfolioListView.as_view(), name="portfolios"),
    path("markets", views.MarketListView.as_view(), name="markets"),
    path("markets/<id:market_id>", views.MarketDetailView.as_view(), name="market"),
    path("leaderboard", views.LeaderboardView.as_view(), name="leaderboard"),
    path("stats/overview", views.StatsOverviewView.as_view(), name="stats-overview"),
    path("ops/highlights", views.OpsHighlightsView.as_view(), name="ops-highlights"),
    path("signals/scorecard", SignalScorecardView.as_view(), name="signals-scorecard"),
    path("anomalies", views.AnomalyListView.as_view(), name="anomalies"),
    path("anomalies/<id:anomaly_id>", views.AnomalyDetailView.as_view(), name="anomaly"),
    path("anomalies/<id:anomaly_id>/acknowledge", views.AnomalyAcknowledgeView.as_view(), name="anomaly-acknowledge"),
    path("ai/analyze/<id:wallet_id>", views.AiAnalyzeView.as_view(), name="ai-analyze"),
    path("ai/report/<id:wallet_id>", views.AiReportView.as_view(), name="ai-report"),
    path("ai/report/<id:wallet_id>/history", views.AiReportHistoryView.as_view(), name="ai-report-history"),
    path("ingest/status", views.IngestStatusView.as_view(), name="ingest-status"),
    path("ingest/runs", views.IngestRunListView.as_view(), name="ingest-runs"),
]


def _route_template(pattern: str) -> str:
    """wallets/<id:wallet_id>/profile → /api/v1/wallets/{wallet_id}/profile"""
    return "/api/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", pattern)


v1.insert(0, path("", views.ApiIndexView.as_view(routes=tuple(_route_template(str(p.pattern)) for p in v1)), name="index"))

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include(v1)),
    # Reached only when no route above matched: the envelope, not Django's HTML 404 page.
    re_path(r"^api/v1/.*$", views.unknown_route, name="api-unknown-route"),
]
