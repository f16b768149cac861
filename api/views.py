"""Serving views. Thin: validate parameters, call one selector or service, wrap the envelope.

Errors are raised as DRF exceptions and turned into the envelope by `api.exceptions`.
"""

from __future__ import annotations

from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, Throttled, ValidationError
from rest_framework.views import APIView

from api import params, presenters, schema, selectors, serializers, services
from api.envelope import error_response, ok, scored_meta
from api.identity import fingerprint_optional, fingerprint_required
from api.parsers import BoundedJSONParser
from api.throttling import client_identity
from ingest.selectors import ingest_overview, ingest_runs_list, ingest_stream_status
from scoring.ai import AiProviderError, AiRateLimited
from scoring.services import AiReportIneligible

WALLET_NOT_FOUND = "wallet not found"
MARKET_NOT_FOUND = "market not found"
ANOMALY_NOT_FOUND = "anomaly not found"
REPORT_NOT_FOUND = "report not found"


class AiProviderUnavailable(APIException):
    status_code = 503
    default_detail = "AI provider unavailable; try again later"


@csrf_exempt
def unknown_route(request, *args, **kwargs):
    # The frontend parses the envelope on every /api/v1 response, so even an unknown route
    # answers JSON rather than Django's HTML 404 page. CSRF-exempt: it changes nothing, and a
    # POST to a mistyped path must read "route not found", not an HTML CSRF failure page.
    return error_response(request, status=404, message="route not found")


class ApiIndexView(APIView):
    """GET /api/v1/: where a newcomer starts — the docs, the schema and every route of v1."""

    routes: tuple[str, ...] = ()  # set by api.urls from its own route list

    @extend_schema(
        operation_id="api_index",
        tags=["meta"],
        summary="Where to start: the API docs, the OpenAPI schema and every v1 route",
        responses=schema.responses(200, schema.enveloped(serializers.ApiIndexSerializer)),
    )
    def get(self, request):
        data = {"version": "v1", "docs": "/api/docs/", "schema": "/api/schema/", "routes": list(self.routes)}
        return ok(request, serializers.ApiIndexSerializer(data).data)


def _paged(request, page: selectors.Page, serializer_class, *, meta: dict | None = None, context: dict | None = None):
    data = {"items": serializer_class(page.items, many=True, context=context or {}).data, "pagination": page.pagination}
    return ok(request, data, meta=meta)


def _wallet_snapshot_or_404(wallet_id: int):
    snapshot = selectors.wallet_snapshot_get(wallet_id=wallet_id)
    if snapshot is None:
        raise NotFound(WALLET_NOT_FOUND)
    return snapshot


def _page_args(values: dict) -> dict:
    return {"page": values.pop("page"), "page_size": values.pop("page_size")}


def _sort_args(values: dict) -> dict:
    return {"sort_by": values.pop("sort_by"), "order": values.pop("order")}


# --- Wallets -------------------------------------------------------------------------------------


class WalletListView(APIView):
    @extend_schema(
        operation_id="wallets_list",
        tags=["wallets"],
        summary="List or search wallets",
        parameters=[params.WalletListParams],
        responses=schema.responses(200, schema.paged(serializers.WalletListItemSerializer), e400=schema.BAD_REQUEST),
    )
    def get(self, request):
        values = params.validated(params.WalletListParams, request.query_params)
        page = selectors.wallet_list(**_page_args(values), **_sort_args(values), filters=values)
        return _paged(request, page, serializers.WalletListItemSerializer)


class WalletPotentialListView(APIView):
    @extend_schema(
        operation_id="wallets_potential_list",
        tags=["wallets"],
        summary="Discover potential wallets",
        description="Wallets from their latest snapshot, filtered by evidence and PnL. Ties sort by wallet id.",
        parameters=[params.PotentialParams],
        responses=schema.responses(200, schema.paged(serializers.WalletFactsSerializer), e400=schema.BAD_REQUEST),
    )
    def get(self, request):
        values = params.validated(params.PotentialParams, request.query_params)
        page = selectors.wallet_potential_list(**_page_args(values), **_sort_args(values), filters=values)
        return _paged(request, page, serializers.WalletFactsSerializer, meta=scored_meta())


WALLET_404 = {"e404": schema.not_found(WALLET_NOT_FOUND)}
WALLET_ID = [schema.wallet_id_parameter("wallet_id")]


class WalletDetailView(APIView):
    @extend_schema(
        operation_id="wallets_retrieve",
        tags=["wallets"],
        parameters=WALLET_ID,
        summary="One wallet",
        responses=schema.responses(200, schema.enveloped(serializers.WalletDetailSerializer), **WALLET_404),
    )
    def get(self, request, wallet_id: int):
        wallet = selectors.wallet_get(wallet_id=wallet_id)
        if wallet is None:
            raise NotFound(WALLET_NOT_FOUND)
        return ok(request, serializers.WalletDetailSerializer(wallet).data)


class WalletProfileView(APIView):
    @extend_schema(
        operation_id="wallets_profile",
        tags=["wallets"],
        parameters=WALLET_ID,
        summary="Profile: facts, strategy, information edge and recent events",
        responses=schema.responses(200, schema.enveloped(serializers.ProfileSerializer), **WALLET_404),
    )
    def get(self, request, wallet_id: int):
        profile = selectors.wallet_profile_get(wallet_id=wallet_id)
        if profile is None:
            raise NotFound(WALLET_NOT_FOUND)
        meta = scored_meta()
        snapshot = profile.snapshot
        data = serializers.ProfileSerializer(
            {
                "wallet": profile.wallet,
                "layer1_facts": presenters.layer1_facts(snapshot),
                # Absent, not a row of defaults, until the wallet's scores are computed.
                "strategy": snapshot if snapshot.scored_at is not None else None,
                "layer3_info_edge": presenters.info_edge(snapshot),
                "meta": meta,
                "recent_events": profile.recent_events,
                "last_report_at": snapshot.last_report_at,
            }
        ).data
        return ok(request, data, meta=meta)


class WalletShareCardView(APIView):
    @extend_schema(
        operation_id="wallets_share_card",
        tags=["wallets"],
        parameters=WALLET_ID,
        summary="Share card",
        responses=schema.responses(200, schema.enveloped(serializers.ShareCardSerializer), **WALLET_404),
    )
    def get(self, request, wallet_id: int):
        card = selectors.wallet_share_card_get(wallet_id=wallet_id)
        if card is None:
            raise NotFound(WALLET_NOT_FOUND)
        return ok(request, serializers.ShareCardSerializer(card).data, meta=scored_meta())


class WalletShareLandingView(APIView):
    @extend_schema(
        operation_id="wallets_share_landing",
        tags=["wallets"],
        parameters=WALLET_ID,
        summary="Share landing page: share card, PnL windows and the decision card",
        responses=schema.responses(200, schema.enveloped(serializers.ShareLandingSerializer), **WALLET_404),
    )
    def get(self, request, wallet_id: int):
        landing = selectors.wallet_share_landing_get(wallet_id=wallet_id)
        if landing is None:
            raise NotFound(WALLET_NOT_FOUND)
        return ok(request, serializers.ShareLandingSerializer(landing).data, meta=scored_meta())


class WalletDecisionCardView(APIView):
    @extend_schema(
        operation_id="wallets_decision_card",
        tags=["wallets"],
        parameters=WALLET_ID,
        summary="Decision card (English and Chinese)",
        responses=schema.responses(200, schema.enveloped(serializers.DecisionCardSerializer), **WALLET_404),
    )
    def get(self, request, wallet_id: int):
        snapshot = _wallet_snapshot_or_404(wallet_id)
        card = presenters.decision_card(snapshot)
        return ok(request, serializers.DecisionCardSerializer(card).data, meta=scored_meta())


class WalletExplanationsView(APIView):
    @extend_schema(
        operation_id="wallets_explanations",
        tags=["wallets"],
        parameters=WALLET_ID,
        summary="What each number of the three layers means, with its value",
        responses=schema.responses(200, schema.enveloped(serializers.ExplanationsSerializer), **WALLET_404),
    )
    def get(self, request, wallet_id: int):
        snapshot = _wallet_snapshot_or_404(wallet_id)
        explained = presenters.explanations(snapshot)
        return ok(request, serializers.ExplanationsSerializer(explained).data, meta=scored_meta())


class WalletInfoEdgeView(APIView):
    @extend_schema(
        operation_id="wallets_info_edge",
        tags=["wallets"],
        parameters=WALLET_ID,
        summary="Information edge: Δt of trades against the next public off-chain event",
        responses=schema.responses(200, schema.enveloped(serializers.InfoEdgeSerializer), **WALLET_404),
    )
    def get(self, request, wallet_id: int):
        snapshot = _wallet_snapshot_or_404(wallet_id)
        return ok(request, serializers.InfoEdgeSerializer(presenters.info_edge(snapshot)).data, meta=scored_meta())


# --- Watchlist -----------------------------------------------------------------------------------


class WatchlistView(APIView):
    @extend_schema(
        operation_id="watchlist_list",
        tags=["watchlist"],
        summary="My followed wallets, newest follow first",
        description="Without a fingerprint the list is empty (reads never fall back to another identity).",
        parameters=[params.PagingParams, *schema.FINGERPRINT_PARAMETERS],
        responses=schema.responses(200, schema.paged(serializers.WatchlistItemSerializer), e400=schema.BAD_REQUEST),
    )
    def get(self, request):
        fingerprint = fingerprint_optional(request)
        values = params.validated(params.PagingParams, request.query_params)
        page = selectors.watchlist_list(fingerprint=fingerprint, **_page_args(values))
        return _paged(request, page, serializers.WatchlistItemSerializer, meta=scored_meta())

    @extend_schema(
        operation_id="watchlist_follow",
        tags=["watchlist"],
        summary="Follow a wallet (idempotent)",
        description="Requires a fingerprint (400 without one).",
        parameters=schema.FINGERPRINT_REQUIRED_PARAMETERS,
        request=params.WatchlistFollowBody,
        responses=schema.responses(
            201, schema.enveloped(serializers.WatchingSerializer), e400=schema.BAD_REQUEST, **WALLET_404, **schema.BODY_ERRORS
        ),
    )
    def post(self, request):
        fingerprint = fingerprint_required(request)
        body = params.validated(params.WatchlistFollowBody, request.data)
        try:
            created = services.watchlist_follow(fingerprint=fingerprint, wallet_id=body["wallet_id"])
        except services.WalletNotFound:
            raise NotFound(WALLET_NOT_FOUND) from None
        return ok(request, {"wallet_id": body["wallet_id"], "watching": True}, status=201, meta={"created": created})


class WatchlistBatchView(APIView):
    @extend_schema(
        operation_id="watchlist_follow_batch",
        tags=["watchlist"],
        summary="Follow several wallets; unknown ids are reported, not followed",
        parameters=schema.FINGERPRINT_REQUIRED_PARAMETERS,
        request=params.WatchlistBatchBody,
        responses=schema.responses(
            201, schema.enveloped(serializers.WatchlistBatchResultSerializer), e400=schema.BAD_REQUEST, **schema.BODY_ERRORS
        ),
    )
    def post(self, request):
        fingerprint = fingerprint_required(request)
        body = params.validated(params.WatchlistBatchBody, request.data)
        result = services.watchlist_follow_batch(fingerprint=fingerprint, wallet_ids=body["wallet_ids"])
        data = {
            "wallet_ids": result.wallet_ids,
            "newly_followed": result.newly_followed,
            "unknown_wallet_ids": result.unknown_wallet_ids,
            "watching": True,
        }
        return ok(request, serializers.WatchlistBatchResultSerializer(data).data, status=201)


class WatchlistEntryView(APIView):
    @extend_schema(
        operation_id="watchlist_unfollow",
        tags=["watchlist"],
        summary="Stop following a wallet (idempotent)",
        parameters=[schema.wallet_id_parameter("wallet_id"), *schema.FINGERPRINT_REQUIRED_PARAMETERS],
        responses=schema.responses(200, schema.enveloped(serializers.WatchingSerializer), e400=schema.BAD_REQUEST, **WALLET_404),
    )
    def delete(self, request, wallet_id: int):
        fingerprint = fingerprint_required(request)
        try:
            services.watchlist_unfollow(fingerprint=fingerprint, wallet_id=wallet_id)
        except services.WalletNotFound:
            raise NotFound(WALLET_NOT_FOUND) from None
        return ok(request, {"wallet_id": wallet_id, "watching": False})


class WatchlistFeedView(APIView):
    @extend_schema(
        operation_id="watchlist_feed",
        tags=["watchlist"],
        summary="Events of my followed wallets, newest first",
        parameters=[params.FeedParams, *schema.FINGERPRINT_PARAMETERS],
        responses=schema.responses(200, schema.paged(serializers.FeedEventSerializer), e400=schema.BAD_REQUEST),
    )
    def get(self, request):
        fingerprint = fingerprint_optional(request)
        values = params.validated(params.FeedParams, request.query_params)
        page = selectors.watchlist_feed_list(fingerprint=fingerprint, **_page_args(values), filters=values)
        return _paged(request, page, serializers.FeedEventSerializer)


class WatchlistSummaryView(APIView):
    @extend_schema(
        operation_id="watchlist_summary",
        tags=["watchlist"],
        summary="Counts over my followed wallets",
        parameters=schema.FINGERPRINT_PARAMETERS,
        responses=schema.responses(200, schema.enveloped(serializers.WatchlistSummarySerializer), e400=schema.BAD_REQUEST),
    )
    def get(self, request):
        summary = selectors.watchlist_summary_get(fingerprint=fingerprint_optional(request))
        return ok(request, serializers.WatchlistSummarySerializer(summary).data)


# --- Portfolios, markets, leaderboard, stats, highlights ------------------------------------------


class PortfolioListView(APIView):
    @extend_schema(
        operation_id="portfolios_list",
        tags=["portfolios"],
        summary="Curated wallet packs (admin-managed; derived from the scores while none exist)",
        responses=schema.responses(200, schema.enveloped(serializers.PortfolioSerializer, many=True)),
    )
    def get(self, request):
        packs = selectors.portfolio_list()
        return ok(request, serializers.PortfolioSerializer(packs, many=True).data, meta=scored_meta())


class MarketListView(APIView):
    @extend_schema(
        operation_id="markets_list",
        tags=["markets"],
        summary="Markets",
        parameters=[params.MarketListParams],
        responses=schema.responses(200, schema.paged(serializers.MarketItemSerializer), e400=schema.BAD_REQUEST),
    )
    def get(self, request):
        values = params.validated(params.MarketListParams, request.query_params)
        page = selectors.market_list(**_page_args(values), **_sort_args(values), filters=values)
        return _paged(request, page, serializers.MarketItemSerializer)


class MarketDetailView(APIView):
    @extend_schema(
        operation_id="markets_retrieve",
        tags=["markets"],
        summary="One market with its outcomes, prices and resolution",
        parameters=[OpenApiParameter("market_id", int, OpenApiParameter.PATH, description="Market id.")],
        responses=schema.responses(
            200, schema.enveloped(serializers.MarketDetailSerializer), e404=schema.not_found(MARKET_NOT_FOUND)
        ),
    )
    def get(self, request, market_id: int):
        market = selectors.market_get(market_id=market_id)
        if market is None:
            raise NotFound(MARKET_NOT_FOUND)
        return ok(request, serializers.MarketDetailSerializer(market).data)


class LeaderboardView(APIView):
    @extend_schema(
        operation_id="leaderboard_list",
        tags=["scores"],
        summary="Latest score per wallet, one row per wallet",
        parameters=[params.LeaderboardParams],
        responses=schema.responses(200, schema.paged(serializers.LeaderboardItemSerializer), e400=schema.BAD_REQUEST),
    )
    def get(self, request):
        values = params.validated(params.LeaderboardParams, request.query_params)
        page = selectors.leaderboard_list(**_page_args(values), **_sort_args(values), filters=values)
        return _paged(request, page, serializers.LeaderboardItemSerializer, meta=scored_meta())


class StatsOverviewView(APIView):
    @extend_schema(
        operation_id="stats_overview",
        tags=["scores"],
        summary="Homepage totals and data freshness",
        responses=schema.responses(200, schema.enveloped(serializers.StatsOverviewSerializer)),
    )
    def get(self, request):
        return ok(request, serializers.StatsOverviewSerializer(selectors.stats_overview_get()).data)


class OpsHighlightsView(APIView):
    @extend_schema(
        operation_id="ops_highlights",
        tags=["scores"],
        summary="Homepage highlights: new potential wallets, top 24 h PnL, top AI confidence",
        parameters=[params.HighlightsParams],
        responses=schema.responses(200, schema.enveloped(serializers.HighlightsSerializer), e400=schema.BAD_REQUEST),
    )
    def get(self, request):
        values = params.validated(params.HighlightsParams, request.query_params)
        highlights = selectors.ops_highlights_get(limit=values["limit"])
        return ok(request, serializers.HighlightsSerializer(highlights).data, meta=scored_meta())


# --- Anomalies -----------------------------------------------------------------------------------

ANOMALY_404 = {"e404": schema.not_found(ANOMALY_NOT_FOUND)}
ANOMALY_ID = [OpenApiParameter("anomaly_id", int, OpenApiParameter.PATH, description="Anomaly id.")]


class AnomalyListView(APIView):
    @extend_schema(
        operation_id="anomalies_list",
        tags=["anomalies"],
        summary="Anomaly alerts, newest first",
        parameters=[params.AnomalyListParams],
        responses=schema.responses(200, schema.paged(serializers.AnomalySerializer), e400=schema.BAD_REQUEST),
    )
    def get(self, request):
        values = params.validated(params.AnomalyListParams, request.query_params)
        page = selectors.anomaly_list(**_page_args(values), filters=values)
        return _paged(request, page, serializers.AnomalySerializer)


class AnomalyDetailView(APIView):
    @extend_schema(
        operation_id="anomalies_retrieve",
        tags=["anomalies"],
        summary="One anomaly alert",
        parameters=ANOMALY_ID,
        responses=schema.responses(200, schema.enveloped(serializers.AnomalySerializer), **ANOMALY_404),
    )
    def get(self, request, anomaly_id: int):
        anomaly = selectors.anomaly_get(anomaly_id=anomaly_id)
        if anomaly is None:
            raise NotFound(ANOMALY_NOT_FOUND)
        return ok(request, serializers.AnomalySerializer(anomaly).data)


def _actor(request) -> services.Actor:
    user = getattr(request, "user", None)
    signed_in = bool(user and user.is_authenticated)
    identity = client_identity(request)
    return services.Actor(
        user_id=user.pk if signed_in else None,
        fingerprint=fingerprint_optional(request),
        client_key=identity.key,
        client_address=identity.address,
        staff=signed_in and user.is_staff,
    )


ACK_RESPONSES = schema.responses(
    200,
    schema.enveloped(serializers.AcknowledgedSerializer),
    e403=schema.FORBIDDEN,
    **ANOMALY_404,
    **schema.BODY_ERRORS,
)


class AnomalyAcknowledgeView(APIView):
    # The frontend sends no body or JSON; other encodings would turn `false` into a string.
    parser_classes = [BoundedJSONParser]

    def _set(self, request, anomaly_id: int, acknowledged: bool):
        try:
            anomaly = services.anomaly_acknowledge(anomaly_id=anomaly_id, acknowledged=acknowledged, actor=_actor(request))
        except services.AnomalyNotFound:
            raise NotFound(ANOMALY_NOT_FOUND) from None
        except services.StaffRequired:
            raise PermissionDenied("acknowledging alerts requires a staff account here (ANOMALY_ACK_POLICY=staff)") from None
        except services.ClientLimited as limited:
            raise Throttled(wait=limited.wait_seconds) from None
        return ok(request, serializers.AcknowledgedSerializer(anomaly).data)

    @extend_schema(
        operation_id="anomalies_acknowledge",
        tags=["anomalies"],
        summary="Acknowledge an alert, or undo it with {\"acknowledged\": false}",
        description="Recorded with who (user, fingerprint or address) and when; repeating the current state records "
        "nothing. Rate limited per client; with ANOMALY_ACK_POLICY=staff only staff may change it (403).",
        parameters=ANOMALY_ID,
        request=params.AcknowledgeBody,
        responses=ACK_RESPONSES,
    )
    def patch(self, request, anomaly_id: int):
        if not isinstance(request.data, dict):
            raise ValidationError({"body": 'must be a JSON object such as {"acknowledged": false}, or empty'})
        body = params.validated(params.AcknowledgeBody, request.data)
        return self._set(request, anomaly_id, body["acknowledged"])

    @extend_schema(
        operation_id="anomalies_unacknowledge",
        tags=["anomalies"],
        summary="Undo an acknowledgement (same rules as PATCH)",
        parameters=ANOMALY_ID,
        request=None,
        responses=ACK_RESPONSES,
    )
    def delete(self, request, anomaly_id: int):
        return self._set(request, anomaly_id, False)


# --- AI reports ----------------------------------------------------------------------------------


class AiAnalyzeView(APIView):
    @extend_schema(
        operation_id="ai_analyze",
        tags=["ai"],
        summary="Write (201) or return the cached (200) AI report of a wallet",
        description="`force` may come as a query parameter or in a JSON body. A forced report is written at most once "
        "per wallet every 10 minutes and a few times an hour per client (staff: unbounded); beyond that the answer "
        "is the cached report (200) with the reason in `meta.force_refused`. Reports written without a language "
        'model say `model_id: "template"`.',
        parameters=[*WALLET_ID, params.AnalyzeParams],
        request=params.AnalyzeParams,
        responses=schema.responses(
            {
                201: schema.enveloped(serializers.AiReportSerializer),
                200: schema.enveloped(serializers.AiReportSerializer),
            },
            e400=schema.BAD_REQUEST,
            **WALLET_404,
            **schema.BODY_ERRORS,
        ),
    )
    def post(self, request, wallet_id: int):
        if not isinstance(request.data, dict):
            raise ValidationError({"body": "must be a JSON object such as {\"force\": true}"})
        source = request.data if "force" in request.data else request.query_params
        values = params.validated(params.AnalyzeParams, source)
        try:
            answer = services.ai_report_request(wallet_id=wallet_id, force=values["force"], actor=_actor(request))
        except services.WalletNotFound:
            raise NotFound(WALLET_NOT_FOUND) from None
        except AiReportIneligible as error:
            raise ValidationError({"wallet_id": str(error)}) from None
        except AiRateLimited as error:
            retry = str(error)
            raise Throttled(wait=int(retry) if retry.isdigit() else None, detail="AI provider rate limit") from None
        except AiProviderError:
            raise AiProviderUnavailable from None
        meta = {"force_refused": answer.not_forced_reason} if answer.not_forced_reason else None
        return ok(request, serializers.AiReportSerializer(answer.report).data, status=201 if answer.created else 200, meta=meta)


class AiReportView(APIView):
    @extend_schema(
        operation_id="ai_report_latest",
        tags=["ai"],
        summary="Latest AI report of a wallet",
        parameters=WALLET_ID,
        responses=schema.responses(
            200, schema.enveloped(serializers.AiReportSerializer), e404=schema.not_found(REPORT_NOT_FOUND)
        ),
    )
    def get(self, request, wallet_id: int):
        report = selectors.ai_report_latest(wallet_id=wallet_id)
        if report is None:
            raise NotFound(REPORT_NOT_FOUND)
        return ok(request, serializers.AiReportSerializer(report).data)


class AiReportHistoryView(APIView):
    @extend_schema(
        operation_id="ai_report_history",
        tags=["ai"],
        summary="AI reports of a wallet, newest first",
        parameters=[*WALLET_ID, params.ReportHistoryParams],
        responses=schema.responses(
            200, schema.enveloped(serializers.AiReportSerializer, many=True), e400=schema.BAD_REQUEST, **WALLET_404
        ),
    )
    def get(self, request, wallet_id: int):
        values = params.validated(params.ReportHistoryParams, request.query_params)
        if not selectors.wallet_exists(wallet_id=wallet_id):
            raise NotFound(WALLET_NOT_FOUND)
        reports = selectors.ai_report_history(wallet_id=wallet_id, limit=values["limit"])
        return ok(request, serializers.AiReportSerializer(reports, many=True).data)


# --- Ingest --------------------------------------------------------------------------------------


class IngestStatusView(APIView):
    @extend_schema(
        operation_id="ingest_status",
        tags=["ingest"],
        summary="Per (source, stream): cursor, last run, last success, lag, open dead letters and gaps",
        description="`meta.totals` adds open dead letters and gaps, the changed-wallet queue depth and running runs.",
        responses=schema.responses(200, schema.enveloped(serializers.IngestStreamSerializer, many=True)),
    )
    def get(self, request):
        streams = [row.as_dict() for row in ingest_stream_status()]
        return ok(request, serializers.IngestStreamSerializer(streams, many=True).data, meta={"totals": ingest_overview()})


class IngestRunListView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        operation_id="ingest_runs_list",
        tags=["ingest"],
        summary="Recent ingest runs, newest first (staff only)",
        parameters=[params.IngestRunParams],
        responses=schema.responses(
            200, schema.paged(serializers.IngestRunSerializer), e400=schema.BAD_REQUEST, e403=schema.FORBIDDEN
        ),
    )
    def get(self, request):
        values = params.validated(params.IngestRunParams, request.query_params)
        runs = ingest_runs_list(job_name=values.get("job"), status=values.get("status"))
        page = selectors.page_of(runs, **_page_args(values))
        return _paged(request, page, serializers.IngestRunSerializer)
