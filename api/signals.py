"""GET /api/v1/signals/scorecard: how every kind of signal played out (scoring.selectors.signal_scorecard)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from api import schema
from api.envelope import ok
from scoring.selectors import signal_scorecard


class ReverseControlSerializer(serializers.Serializer):
    settled = serializers.IntegerField()
    hit_rate = serializers.FloatField(allow_null=True)
    mean_edge = serializers.FloatField(allow_null=True)
    edge_ci_low = serializers.FloatField(allow_null=True)
    edge_ci_high = serializers.FloatField(allow_null=True)


class ScorecardRowSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="anomaly:<type>, feed:<type> or potential")
    label = serializers.CharField(help_text="the wallet's strategy as scored when the signal fired, or unscored")
    count = serializers.IntegerField()
    settled = serializers.IntegerField(help_text="predictions whose market has resolved")
    markets = serializers.IntegerField(help_text="distinct markets among the settled ones (the clusters)")
    hit_rate = serializers.FloatField(allow_null=True, help_text="share of settled predictions whose side won")
    mean_edge = serializers.FloatField(allow_null=True, help_text="mean of settlement value − price at the signal")
    edge_ci_low = serializers.FloatField(allow_null=True, help_text="95 % interval, standard error clustered by market")
    edge_ci_high = serializers.FloatField(allow_null=True)
    mean_move_1h = serializers.FloatField(allow_null=True, help_text="mean price change of the side after 1 h")
    mean_move_24h = serializers.FloatField(allow_null=True, help_text="mean price change of the side after 24 h")
    reverse = ReverseControlSerializer(help_text="the same figures for the opposite side (the control)")


class ScorecardSerializer(serializers.Serializer):
    rows = ScorecardRowSerializer(many=True)


class SignalScorecardView(APIView):
    @extend_schema(
        operation_id="signals_scorecard",
        tags=["scores"],
        summary="Scorecard of every signal kind and label: hit rate and edge against the reverse control",
        responses=schema.responses(200, schema.enveloped(ScorecardSerializer)),
    )
    def get(self, request):
        return ok(request, ScorecardSerializer({"rows": signal_scorecard()}).data)
