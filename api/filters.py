"""List filters (django-filter), applied by the selectors to already-validated parameters.

The views validate and type the query string with the serializers of `api.params` (strict
filters, lenient paging); these FilterSets turn the typed values into queryset conditions, each
one served by an index of the table it filters.
"""

from __future__ import annotations

import re

import django_filters
from django.db.models import Q, QuerySet
from django.db.models.functions import Collate, Upper

from ingest.models import Market, Wallet
from scoring.models import Anomaly, FeedEvent, FeedEventType, PoolTier, WalletSnapshot

_ADDRESS_PREFIX = re.compile(r"^0x[0-9a-f]{0,40}$")
# The expression the pseudonym search index is built on (api migration 0003).
PSEUDONYM_KEY = Collate(Upper("pseudonym"), "C")


class WalletFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_q")
    tracked = django_filters.BooleanFilter()
    pool_tier = django_filters.ChoiceFilter(field_name="snapshot__pool_tier", choices=PoolTier.choices)

    class Meta:
        model = Wallet
        fields = ["q", "tracked", "pool_tier"]

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        term = value.strip().lower()
        if _ADDRESS_PREFIX.match(term):
            # Addresses are stored lowercase; Django gave the unique column a pattern-ops index,
            # so this LIKE 'prefix%' is an index range scan.
            return queryset.filter(address__startswith=term)
        return pseudonym_search(queryset, value.strip())


def pseudonym_search(queryset: QuerySet, prefix: str) -> QuerySet:
    """Wallets whose pseudonym starts with `prefix` (case-insensitive), with the search key
    annotated for ordering; served by the index of api migration 0003 (one range scan)."""
    keyed = queryset.annotate(pseudonym_key=PSEUDONYM_KEY)
    return keyed.filter(pseudonym_key__startswith=prefix.upper())


class PotentialFilter(django_filters.FilterSet):
    min_trades = django_filters.NumberFilter(field_name="total_trades", lookup_expr="gte")
    min_realized_pnl = django_filters.NumberFilter(field_name="realized_pnl", lookup_expr="gte")
    # Free text (api.params.FreeTextFilterField): a label no wallet has matches no row.
    strategy_type = django_filters.CharFilter()
    pool_tier = django_filters.ChoiceFilter(choices=PoolTier.choices)
    has_ai_report = django_filters.BooleanFilter()

    class Meta:
        model = WalletSnapshot
        fields = ["min_trades", "min_realized_pnl", "strategy_type", "pool_tier", "has_ai_report"]


class LeaderboardFilter(django_filters.FilterSet):
    strategy_type = django_filters.CharFilter()
    pool_tier = django_filters.ChoiceFilter(choices=PoolTier.choices)

    class Meta:
        model = WalletSnapshot
        fields = ["strategy_type", "pool_tier"]


# The frontend's numeric market status, as conditions on the market's own flags.
MARKET_STATUS_CONDITIONS = {
    0: Q(metadata_status=Market.MetadataStatus.PENDING),
    1: ~Q(metadata_status=Market.MetadataStatus.PENDING) & Q(closed=False),
    2: Q(closed=True, winner_index__isnull=True, is_void=False),
    3: Q(winner_index__isnull=False) | Q(is_void=True),
}


class MarketFilter(django_filters.FilterSet):
    category = django_filters.CharFilter(lookup_expr="iexact")
    status = django_filters.NumberFilter(method="filter_status")
    closed = django_filters.BooleanFilter()
    q = django_filters.CharFilter(method="filter_q")

    class Meta:
        model = Market
        fields = ["category", "status", "closed", "q"]

    def filter_status(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(MARKET_STATUS_CONDITIONS[int(value)])

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        for word in value.split()[:5]:
            queryset = queryset.filter(Q(question__icontains=word) | Q(slug__icontains=word))
        return queryset


class CharInFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    pass


class AnomalyFilter(django_filters.FilterSet):
    # Comma-separated levels: api.params.SeverityFilterField turns 3 into "high,critical".
    severity = CharInFilter(field_name="severity")
    type = django_filters.CharFilter(field_name="alert_type")
    acknowledged = django_filters.BooleanFilter()
    wallet_id = django_filters.NumberFilter()

    class Meta:
        model = Anomaly
        fields = ["severity", "type", "acknowledged", "wallet_id"]


class FeedFilter(django_filters.FilterSet):
    type = django_filters.ChoiceFilter(field_name="event_type", choices=FeedEventType.choices)

    class Meta:
        model = FeedEvent
        fields = ["type"]


def filtered(filterset_class: type[django_filters.FilterSet], filters: dict, queryset: QuerySet) -> QuerySet:
    """Apply a FilterSet to typed values; unset values (None, or "" from an empty form field) are no
    condition."""
    data = {name: value for name, value in filters.items() if value not in (None, "") and name in filterset_class.base_filters}
    filterset = filterset_class(data, queryset=queryset)
    if not filterset.is_valid():
        # The params serializer already accepted these values: a mismatch is a programming error.
        raise ValueError(f"{filterset_class.__name__} rejected validated filters: {filterset.errors}")
    return filterset.qs
