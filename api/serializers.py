"""Output serializers: the payload keys of the contract, and the schema drf-spectacular publishes.

Money and scores are JSON numbers (floats from Decimal); ids are integers; times are RFC 3339 UTC.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api import presenters
from api.params import MARKET_STATUSES, SEVERITY_NUMBERS
from ingest.models import RunKind, RunStatus
from scoring.models import (
    AlertType,
    FeedEventType,
    InfoEdgeLevel,
    Momentum,
    PoolTier,
    RiskLevel,
    Severity,
    StrategyType,
)


class NumberField(serializers.FloatField):
    """A Decimal column served as a JSON number."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)


def _nullable_number(**kwargs) -> NumberField:
    return NumberField(allow_null=True, **kwargs)


class OptionalKeysSerializer(serializers.Serializer):
    """Leaves out the keys of `optional_keys` that have no value.

    The frontend's contract marks them "may be absent", never null: it formats what it receives,
    and a null where it expects a string or a time breaks the page. Those fields are declared
    `required=False`, so the published schema does not promise them either.
    """

    optional_keys: tuple[str, ...] = ()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for key in self.optional_keys:
            if data.get(key) in (None, ""):
                data.pop(key, None)
        return data


class LastReportTimeMixin(serializers.Serializer):
    """`last_analyzed_at` is the time of the wallet's latest AI report (as the frontend reads it),
    absent when it has none; the time its scores were computed is `scored_at`."""

    last_analyzed_at = serializers.DateTimeField(
        source="last_report_at", required=False, help_text="Time of the latest AI report; absent when none."
    )


class WalletViewSerializer(OptionalKeysSerializer):
    optional_keys = ("pseudonym",)

    id = serializers.IntegerField()
    address = serializers.CharField(help_text="0x + 40 lowercase hex")
    pseudonym = serializers.CharField(required=False, help_text="Absent when the wallet has none.")
    tracked = serializers.BooleanField()


class WalletListItemSerializer(WalletViewSerializer):
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    first_seen_at = serializers.DateTimeField(source="first_trade_at", allow_null=True)
    last_trade_at = serializers.DateTimeField(allow_null=True)
    pool_tier = serializers.SerializerMethodField()
    smart_score = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ChoiceField(PoolTier.choices, allow_null=True))
    def get_pool_tier(self, wallet) -> str | None:
        snapshot = getattr(wallet, "snapshot", None)
        return snapshot.pool_tier if snapshot else None

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_smart_score(self, wallet) -> float | None:
        snapshot = getattr(wallet, "snapshot", None)
        return float(snapshot.smart_score) if snapshot else None


class WalletDetailSerializer(WalletListItemSerializer):
    name = serializers.CharField()
    profile_image = serializers.CharField()


class WalletFactsSerializer(LastReportTimeMixin, OptionalKeysSerializer):
    """A wallet's headline facts and scores, from its latest snapshot (potential, watchlist)."""

    optional_keys = ("last_analyzed_at",)

    wallet = WalletViewSerializer()
    total_trades = serializers.IntegerField()
    trading_pnl = NumberField()
    maker_rebates = NumberField()
    realized_pnl = NumberField()
    unrealized_pnl = NumberField()
    total_pnl = NumberField()
    volume_30d = NumberField()
    smart_score = NumberField()
    confidence = NumberField()
    info_edge_level = serializers.ChoiceField(InfoEdgeLevel.choices)
    strategy_type = serializers.ChoiceField(StrategyType.choices)
    pool_tier = serializers.ChoiceField(PoolTier.choices)
    risk_level = serializers.ChoiceField(RiskLevel.choices)
    has_ai_report = serializers.BooleanField()
    nl_summary = serializers.CharField()
    summary = serializers.SerializerMethodField()
    scored_at = serializers.DateTimeField(allow_null=True, help_text="When the scores were computed; null before.")

    def get_summary(self, snapshot) -> str:
        return presenters.wallet_summary(snapshot)


class WatchlistItemSerializer(WalletFactsSerializer):
    watchlist_id = serializers.IntegerField()
    watchlisted_at = serializers.DateTimeField()


class HighlightItemSerializer(LastReportTimeMixin, OptionalKeysSerializer):
    optional_keys = ("last_analyzed_at",)

    wallet = WalletViewSerializer()
    trade_count = serializers.IntegerField(source="total_trades")
    realized_pnl = NumberField()
    realized_pnl_24h = NumberField()
    smart_score = NumberField()
    info_edge_level = serializers.ChoiceField(InfoEdgeLevel.choices)
    strategy_type = serializers.ChoiceField(StrategyType.choices)
    pool_tier = serializers.ChoiceField(PoolTier.choices)
    has_ai_report = serializers.BooleanField()
    nl_summary = serializers.CharField()
    model_id = serializers.CharField(source="ai_model_id", help_text='The AI report\'s model; "" when none.')
    ai_confidence = _nullable_number()
    recommend_reason = serializers.SerializerMethodField()
    scored_at = serializers.DateTimeField(allow_null=True)

    def get_recommend_reason(self, snapshot) -> str:
        return presenters.recommend_reason(snapshot, list_name=self.context.get("list_name", ""))


class HighlightsSerializer(serializers.Serializer):
    as_of = serializers.DateTimeField()
    new_potential_wallets_24h = serializers.IntegerField(help_text="Wallets that first crossed the threshold (by trade time).")
    top_realized_pnl_24h = serializers.SerializerMethodField()
    top_ai_confidence = serializers.SerializerMethodField()

    # Each list explains its ranking in `recommend_reason`, so the item serializer is told which.
    @extend_schema_field(HighlightItemSerializer(many=True))
    def get_top_realized_pnl_24h(self, highlights) -> list:
        items = highlights["top_realized_pnl_24h"]
        return HighlightItemSerializer(items, many=True, context={"list_name": "top_realized_pnl_24h"}).data

    @extend_schema_field(HighlightItemSerializer(many=True))
    def get_top_ai_confidence(self, highlights) -> list:
        items = highlights["top_ai_confidence"]
        return HighlightItemSerializer(items, many=True, context={"list_name": "top_ai_confidence"}).data


class FeedEventSerializer(serializers.Serializer):
    event_id = serializers.IntegerField(source="id", help_text="Unique across every event kind.")
    wallet = WalletViewSerializer()
    event_type = serializers.ChoiceField(FeedEventType.choices)
    event_payload = serializers.SerializerMethodField()
    reason_code = serializers.CharField()
    action_required = serializers.BooleanField()
    suggestion = serializers.CharField()
    suggestion_zh = serializers.CharField()
    event_time = serializers.DateTimeField()

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_event_payload(self, event) -> dict:
        payload = dict(event.payload or {})
        payload.setdefault("reason_code", event.reason_code)
        return payload


class TotalsReconciliationSerializer(serializers.Serializer):
    status = serializers.ChoiceField(["reconciled", "drift", "unavailable"])
    realized_pnl_difference = NumberField(
        help_text="Arbitra's after-fee realised PnL minus the realised PnL of Polymarket's profile card, USDC")
    fees_difference = NumberField(help_text="fees charged per the ledger minus the card's, USDC")
    maker_rebates_difference = NumberField()
    rewards_difference = NumberField()
    observed_at = serializers.DateTimeField(allow_null=True, help_text="the card's observation time")


class ReconciliationSerializer(serializers.Serializer):
    status = serializers.ChoiceField(["reconciled", "drift", "unknown"])
    difference = NumberField(help_text="Arbitra's Polymarket-basis realised PnL minus Polymarket's, USDC")
    checked_at = serializers.DateTimeField(allow_null=True)
    totals = TotalsReconciliationSerializer(help_text="against Polymarket's profile card (/v2/user-stats); a "
                                            "totals drift makes `status` drift")


class LayerOneFactsSerializer(serializers.Serializer):
    realized_pnl = NumberField()
    cash_pnl = NumberField(help_text="After fees, plus rebates and rewards as income (the wallet ledger)")
    rewards = NumberField()
    reconciliation = ReconciliationSerializer()
    unrealized_pnl = NumberField()
    trading_pnl = NumberField()
    maker_rebates = NumberField()
    total_pnl = NumberField()
    fees_paid = NumberField()
    total_trades = serializers.IntegerField()
    volume_30d = NumberField()
    volume_total = NumberField()
    markets_traded = serializers.IntegerField()
    win_rate = _nullable_number()
    roi = NumberField()
    resolved_positions = serializers.IntegerField()
    open_positions = serializers.IntegerField()
    first_trade_at = serializers.DateTimeField(allow_null=True)
    last_trade_at = serializers.DateTimeField(allow_null=True)


class StrategySerializer(serializers.Serializer):
    strategy_type = serializers.ChoiceField(StrategyType.choices)
    smart_score = NumberField()
    info_edge_level = serializers.ChoiceField(InfoEdgeLevel.choices)
    pool_tier = serializers.ChoiceField(PoolTier.choices)
    risk_level = serializers.ChoiceField(RiskLevel.choices)
    momentum = serializers.ChoiceField(Momentum.choices)
    confidence = NumberField()
    scored_at = serializers.DateTimeField(allow_null=True)


class InfoEdgeLayerSerializer(serializers.Serializer):
    """From `presenters.info_edge`: numbers even without samples (see there)."""

    mean_delta_minutes = serializers.FloatField()
    stddev_minutes = serializers.FloatField()
    samples = serializers.IntegerField()
    z_score = serializers.FloatField()
    p_value = serializers.FloatField()
    label = serializers.ChoiceField(InfoEdgeLevel.choices)


class DisclosuresSerializer(serializers.Serializer):
    disclosures = serializers.ListField(child=serializers.CharField())
    disclosures_zh = serializers.ListField(child=serializers.CharField())


class ProfileSerializer(LastReportTimeMixin, OptionalKeysSerializer):
    optional_keys = ("strategy", "last_analyzed_at")

    wallet = WalletViewSerializer()
    layer1_facts = LayerOneFactsSerializer()
    strategy = StrategySerializer(required=False, help_text="Absent until the wallet's scores are computed.")
    layer3_info_edge = InfoEdgeLayerSerializer()
    meta = DisclosuresSerializer()
    recent_events = FeedEventSerializer(many=True, help_text="At most 10, newest first.")


class DecisionCardSerializer(serializers.Serializer):
    wallet_id = serializers.IntegerField()
    pool_tier = serializers.ChoiceField(PoolTier.choices)
    suitable_for = serializers.ChoiceField(["watch_only", "conservative", "balanced", "aggressive"])
    risk_level = serializers.ChoiceField(RiskLevel.choices)
    suggested_position = serializers.CharField()
    momentum = serializers.ChoiceField(Momentum.choices)
    status_7d = serializers.ChoiceField(["inactive", "profitable", "losing", "flat"])
    recommendation = serializers.CharField()
    recommendation_zh = serializers.CharField()
    disclaimer = serializers.CharField()
    disclaimer_zh = serializers.CharField()
    last_updated = serializers.DateTimeField(help_text="When the scores were computed (the wallet's record before).")


class ShareCardSerializer(serializers.Serializer):
    wallet = WalletViewSerializer()
    total_trades = serializers.IntegerField()
    realized_pnl = NumberField()
    trading_pnl = NumberField()
    total_pnl = NumberField()
    smart_score = NumberField()
    info_edge_level = serializers.ChoiceField(InfoEdgeLevel.choices)
    strategy_type = serializers.ChoiceField(StrategyType.choices)
    pool_tier = serializers.ChoiceField(PoolTier.choices)
    has_ai_report = serializers.BooleanField()
    nl_summary = serializers.CharField(help_text="The AI report's summary, else a plain statement of the facts.")
    ai_summary = serializers.CharField(help_text="Same text as nl_summary.")
    ai_summary_source = serializers.ChoiceField(["ai_report", "fallback"])
    follower_count = serializers.IntegerField()
    new_followers_7d = serializers.IntegerField(help_text="New followers in the last 7 days.")
    followers_7d = serializers.IntegerField(help_text="Same as new_followers_7d.")
    updated_at = serializers.DateTimeField(help_text="When the scores were computed (the wallet's record before).")


class ShareLandingSerializer(ShareCardSerializer):
    pnl_7d = NumberField()
    pnl_30d = NumberField()
    max_drawdown_7d = NumberField()
    stability_score = NumberField()
    decision_card = DecisionCardSerializer()


class ExplainedValueSerializer(serializers.Serializer):
    value = serializers.JSONField(allow_null=True)
    explanation = serializers.CharField()
    sources = serializers.JSONField(
        allow_null=True,
        help_text="Where a wallet-ledger number comes from: ledger rows per kind, settled positions with their "
        "resolution payout, open positions with their mark price and its time; null for other numbers",
    )


def _explained_layer(name: str, keys: list[str]) -> type[serializers.Serializer]:
    fields = {key: ExplainedValueSerializer() for key in keys}
    return type(name, (serializers.Serializer,), fields)


ExplanationLayer1 = _explained_layer("ExplanationLayer1Serializer", list(presenters.EXPLANATIONS["layer1"]))
ExplanationLayer2 = _explained_layer("ExplanationLayer2Serializer", list(presenters.EXPLANATIONS["layer2"]))
ExplanationLayer3 = _explained_layer("ExplanationLayer3Serializer", list(presenters.EXPLANATIONS["layer3"]))


class ExplanationsSerializer(serializers.Serializer):
    wallet_id = serializers.IntegerField()
    address = serializers.CharField()
    layer1 = ExplanationLayer1()
    layer2 = ExplanationLayer2()
    layer3 = ExplanationLayer3()
    disclosures = serializers.ListField(child=serializers.CharField())
    generated_at = serializers.DateTimeField()


class InfoEdgeSerializer(InfoEdgeLayerSerializer):
    wallet_id = serializers.IntegerField()
    classification = serializers.ChoiceField(InfoEdgeLevel.choices, source="label")


class WatchingSerializer(serializers.Serializer):
    wallet_id = serializers.IntegerField()
    watching = serializers.BooleanField()


class WatchlistBatchResultSerializer(serializers.Serializer):
    wallet_ids = serializers.ListField(child=serializers.IntegerField(), help_text="Followed now (new or already).")
    newly_followed = serializers.ListField(child=serializers.IntegerField())
    unknown_wallet_ids = serializers.ListField(child=serializers.IntegerField(), help_text="No such wallet.")
    watching = serializers.BooleanField()


class WatchlistSummarySerializer(serializers.Serializer):
    followed_wallets = serializers.IntegerField()
    style_distribution = serializers.DictField(child=serializers.IntegerField(), help_text="strategy_type → wallets")
    action_required = serializers.IntegerField(help_text="Followed wallets with an event needing action (7 days).")
    healthy_wallets = serializers.IntegerField(help_text="followed_wallets − action_required")


class PortfolioSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    name_zh = serializers.CharField()
    description = serializers.CharField()
    risk_level = serializers.ChoiceField(RiskLevel.choices)
    expected_return = serializers.CharField(help_text='For display, e.g. "15%-30%".')
    max_drawdown = serializers.CharField(help_text='For display, e.g. "<30%".')
    expected_return_value = NumberField(help_text="Ratio: 0.12 = 12 %.")
    max_drawdown_value = NumberField(help_text="Ratio: 0.08 = 8 %.")
    wallet_ids = serializers.ListField(child=serializers.IntegerField())
    wallets = WalletViewSerializer(many=True)
    source = serializers.ChoiceField(["managed", "derived"])


class MarketResolutionSerializer(serializers.Serializer):
    resolved = serializers.BooleanField(source="is_resolved")
    winner_index = serializers.IntegerField(allow_null=True)
    is_void = serializers.BooleanField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    uma_resolution_status = serializers.CharField()


def market_status(market) -> int:
    if market.is_resolved:
        return 3
    if market.closed:
        return 2
    if market.metadata_status == "pending":
        return 0
    return 1


class MarketItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    condition_id = serializers.CharField()
    slug = serializers.CharField()
    title = serializers.CharField(source="question")
    category = serializers.CharField()
    status = serializers.SerializerMethodField()
    has_fee = serializers.SerializerMethodField()
    volume = NumberField()
    liquidity = NumberField()
    active = serializers.BooleanField()
    closed = serializers.BooleanField()
    outcomes = serializers.ListField(child=serializers.CharField())
    prices = serializers.SerializerMethodField()
    resolution = MarketResolutionSerializer(source="*")
    end_date = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(serializers.ChoiceField(MARKET_STATUSES))
    def get_status(self, market) -> int:
        return market_status(market)

    def get_has_fee(self, market) -> bool:
        # Gamma's feesEnabled; the frontend reads a boolean, so "never said" reads as no fee.
        return market.fees_enabled is True

    @extend_schema_field(serializers.ListField(child=serializers.FloatField(allow_null=True)))
    def get_prices(self, market) -> list:
        prices = []
        for price in market.outcome_prices or []:
            try:
                prices.append(float(price))
            except (TypeError, ValueError):
                prices.append(None)
        return prices


class OutcomeTokenSerializer(serializers.Serializer):
    token_id = serializers.CharField()
    outcome_index = serializers.IntegerField()
    outcome = serializers.CharField()
    latest_price = _nullable_number()


class MarketDetailSerializer(MarketItemSerializer):
    description = serializers.CharField()
    tags = serializers.JSONField()
    event_slug = serializers.CharField()
    event_title = serializers.CharField()
    closed_time = serializers.DateTimeField(allow_null=True)
    tokens = OutcomeTokenSerializer(many=True, source="tokens.all")


class LeaderboardItemSerializer(OptionalKeysSerializer):
    optional_keys = ("pseudonym",)

    wallet_id = serializers.IntegerField()
    address = serializers.CharField(source="wallet.address")
    pseudonym = serializers.CharField(source="wallet.pseudonym", required=False, help_text="Absent when none.")
    strategy_type = serializers.ChoiceField(StrategyType.choices)
    smart_score = NumberField()
    confidence = NumberField()
    info_edge_level = serializers.ChoiceField(InfoEdgeLevel.choices)
    pool_tier = serializers.ChoiceField(PoolTier.choices)
    total_trades = serializers.IntegerField()
    realized_pnl = NumberField()
    scored_at = serializers.DateTimeField()


class FreshnessSerializer(serializers.Serializer):
    latest_trade_at = serializers.DateTimeField(allow_null=True)
    last_computed_at = serializers.DateTimeField(allow_null=True)
    trade_lag_seconds = serializers.FloatField(allow_null=True)
    compute_lag_seconds = serializers.FloatField(allow_null=True)


class StatsOverviewSerializer(serializers.Serializer):
    tracked_wallets = serializers.IntegerField()
    indexed_markets = serializers.IntegerField()
    wallets = serializers.IntegerField()
    scored_wallets = serializers.IntegerField()
    trades = serializers.IntegerField(help_text="Fills counted per wallet in the snapshots.")
    potential_wallets = serializers.IntegerField()
    data_freshness = FreshnessSerializer()
    as_of = serializers.DateTimeField()


class AnomalySerializer(OptionalKeysSerializer):
    optional_keys = ("market_id",)

    id = serializers.IntegerField()
    wallet_id = serializers.IntegerField()
    market_id = serializers.IntegerField(required=False, help_text="Absent when the alert is about no one market.")
    alert_type = serializers.ChoiceField(AlertType.choices)
    severity = serializers.SerializerMethodField()
    severity_label = serializers.ChoiceField(Severity.choices, source="severity")
    evidence = serializers.JSONField()
    description = serializers.CharField()
    acknowledged = serializers.BooleanField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    observed_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()


    @extend_schema_field(serializers.IntegerField(min_value=1, max_value=3, help_text="1 low, 2 medium, 3 high or critical."))
    def get_severity(self, anomaly) -> int:
        return SEVERITY_NUMBERS[anomaly.severity]


class AcknowledgedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    acknowledged = serializers.BooleanField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)


class AiReportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    wallet_id = serializers.IntegerField()
    model_id = serializers.CharField(help_text='"template" when no language model wrote the report.')
    report = serializers.JSONField()
    nl_summary = serializers.CharField()
    risk_warnings = serializers.JSONField()
    confidence = NumberField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    latency_ms = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class IngestStreamSerializer(serializers.Serializer):
    job_name = serializers.CharField()
    source = serializers.CharField()
    stream = serializers.CharField()
    description = serializers.CharField()
    cursor = serializers.CharField(allow_null=True)
    cursor_updated_at = serializers.DateTimeField(allow_null=True)
    last_run_status = serializers.ChoiceField(RunStatus.choices, allow_null=True)
    last_run_at = serializers.DateTimeField(allow_null=True)
    last_success_at = serializers.DateTimeField(allow_null=True)
    lag_seconds = serializers.FloatField(allow_null=True)
    newest_upstream_time = serializers.CharField(allow_null=True)
    dead_letters_open = serializers.IntegerField()
    gaps_open = serializers.IntegerField()
    newest_stored_time = serializers.DateTimeField(allow_null=True, help_text="Newest fill stored (trades stream only)")
    newest_stored_age_seconds = serializers.FloatField(
        allow_null=True, help_text="Wall-clock age of the newest stored fill; keeps growing when ingest stalls"
    )


class IngestRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    job_name = serializers.CharField()
    kind = serializers.ChoiceField(RunKind.choices)
    status = serializers.ChoiceField(RunStatus.choices)
    window_start = serializers.DateTimeField(allow_null=True)
    window_end = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.FloatField(allow_null=True)
    stats = serializers.JSONField(source="stats_json")
    error_text = serializers.CharField()


class ApiIndexSerializer(serializers.Serializer):
    version = serializers.CharField()
    docs = serializers.CharField(help_text="Swagger UI of this API")
    schema = serializers.CharField(help_text="OpenAPI 3 schema")
    routes = serializers.ListField(child=serializers.CharField(), help_text="every v1 route, {name} = path parameter")
